import { InternalServerErrorException, Logger } from '@nestjs/common';
import { answerMayBeLost, retryTransient } from '../../db/transient';
import { LOST_START_LOOKUP_MS } from './start-stored-workflow';

const logger = new Logger('StoredSubmission');

/**
 * Stores a submission that has no idempotency key. Its write may commit and its answer be lost (the
 * connection reset mid-statement): a 503 would then have the client send it again, and the work would
 * run twice. So after such a failure the row is looked for by the id this request gave it: found, the
 * submission goes on as stored by this request; certainly absent, the failure stands (a 503: sending it
 * again is safe); the look failing too, a 500 that names it and says it may be stored (the API starts a
 * stored submission by itself, see StrandedSubmissionsSweeper).
 */
export async function storeOrFind<T>(
  s: { what: 'task' | 'plan'; id: string },
  store: () => Promise<T>,
  find: () => Promise<T | undefined>,
): Promise<T> {
  try {
    return await store();
  } catch (err) {
    if (!answerMayBeLost(err)) throw err;
    let found: T | undefined;
    try {
      found = await retryTransient(find, LOST_START_LOOKUP_MS);
    } catch (lookupErr) {
      logger.error(
        `${s.what} ${s.id}: its write's answer was lost, and so was the look for it: ${(lookupErr as Error).message}`,
      );
      throw new InternalServerErrorException(
        `${s.what} ${s.id} may be stored (the database's answer was lost): do not submit it again before GET /v1/${s.what}s/${s.id} answers 404`,
      );
    }
    if (found === undefined) throw err;
    return found;
  }
}
