import { ApplicationFailure } from '@temporalio/activity';
import { RowGoneError } from '../../src/store/row-gone-error';

/** The failure type of a write whose task or plan row is not in the database. */
export const ROW_GONE = 'row_gone';

/**
 * Runs a bookkeeping write that lands on a task's or plan's rows, and fails it for good when they are
 * gone (a foreign key finds no row, or the store finds none: RowGoneError): the API removed a submission whose start it thought had failed,
 * though the start reached Temporal. Retried, such a write would fail for ever, and its workflow would
 * never end nor release its locks; failed, the workflow ends, and with it whatever it holds.
 */
export async function unlessRowGone<T>(what: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (!(err instanceof RowGoneError) && (err as { code?: unknown }).code !== '23503') throw err;
    throw ApplicationFailure.nonRetryable(`${what} is not in the database: its submission was withdrawn`, ROW_GONE);
  }
}
