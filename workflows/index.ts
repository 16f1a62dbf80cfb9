export { agentTaskWorkflow } from './agent-task.workflow';
