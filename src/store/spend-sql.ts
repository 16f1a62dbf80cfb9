/**
 * SQL for what has been spent, as admission counts it against the caps: the daily cap, by UTC day, and
 * a task's cap, over all its attempts. Admission's refusal and the budget store's wake rule must count
 * alike, or a raise could wake tasks admission still refuses, or leave asleep ones it would admit.
 */

/** SQL: what all tasks spent on the UTC day of the timestamp `at` (an SQL expression). */
export const spentOnDayOf = (at: string): string =>
  `(SELECT COALESCE(sum(cost_usd), 0) FROM agent_spend WHERE day = (${at} AT TIME ZONE 'UTC')::date)`;

/** SQL: what the task whose id is `taskId` (an SQL expression) has spent. */
export const spentByTask = (taskId: string): string =>
  `(SELECT COALESCE(sum(cost_usd), 0) FROM attempts WHERE task_id = ${taskId})`;
