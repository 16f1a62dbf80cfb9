import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ArgumentsHost } from '@nestjs/common';
import pino from 'pino';
import { HttpErrorFilter } from '../../src/api/http/http-error.filter';

/** What the filter answers for `error`: its status and JSON body. */
function answer(error: unknown): { status: number; body: Record<string, unknown> } {
  const sent = { status: 0, body: {} as Record<string, unknown> };
  const response = {
    type: () => response,
    status: (status: number) => {
      sent.status = status;
      return response;
    },
    json: (body: Record<string, unknown>) => {
      sent.body = body;
      return response;
    },
    getHeader: () => undefined,
  };
  const host = {
    switchToHttp: () => ({ getResponse: () => response, getRequest: () => ({ url: '/v1/tasks', headers: {} }) }),
  } as unknown as ArgumentsHost;
  new HttpErrorFilter(pino({ level: 'silent' })).catch(error, host);
  return sent;
}

describe('the HTTP error filter', () => {
  it('answers a database that is away with a 503 the client may retry, shaped as every error', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    assert.deepEqual(answer(refused), {
      status: 503,
      body: { statusCode: 503, error: 'Service Unavailable', message: 'database unavailable, try again' },
    });
  });

  it('answers a database that did not answer a bounded read in time with the same 503', () => {
    assert.deepEqual(answer(new Error('Query read timeout')), {
      status: 503,
      body: { statusCode: 503, error: 'Service Unavailable', message: 'database unavailable, try again' },
    });
  });

  it('keeps what went wrong in an unexpected error out of the answer', () => {
    assert.deepEqual(answer(new Error('secret detail')), {
      status: 500,
      body: { statusCode: 500, message: 'internal error' },
    });
  });
});
