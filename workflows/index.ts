export { agentTaskWorkflow } from './agent-task.workflow';
export { planWorkflow } from './plan.workflow';
export { lockManagerWorkflow } from './lock-manager.workflow';
