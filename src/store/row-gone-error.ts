/**
 * A write found no row of the task or plan it is for: the API removed the submission (it thought the
 * start had failed, though it reached Temporal). Bookkeeping activities fail for good on it, as on a
 * foreign key that finds no row (activities/store/row-gone.ts).
 */
export class RowGoneError extends Error {}
