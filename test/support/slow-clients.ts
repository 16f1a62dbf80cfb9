import { request, type IncomingMessage } from 'node:http';

/** A GET whose client reads nothing past the answer's head: what the server writes piles up. */
export function stalledGet(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      res.pause();
      resolve(res);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Reads what a stalled answer still holds, once its server has stopped; resolves with whether the
 * answer was cut short (no proper end) rather than ended.
 */
export function readToItsEnd(res: IncomingMessage): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    res.on('error', () => undefined);
    res.once('close', () => resolve(!res.complete));
    res.resume();
  });
}

/** A GET whose client leaves as soon as its request is sent, before any answer; resolves once it has. */
export function getAndLeave(url: string): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url);
    req.on('error', () => undefined);
    req.once('close', () => resolve());
    req.once('finish', () => req.destroy());
    req.end();
  });
}
