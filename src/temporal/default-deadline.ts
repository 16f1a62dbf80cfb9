import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';

/**
 * A gRPC interceptor that gives every call made without a deadline one `ms` after it starts (retries
 * included, when it comes before the retry interceptor). A call with its own deadline keeps it.
 */
export const defaultDeadline =
  (ms: number): Interceptor =>
  (options, nextCall) =>
    new InterceptingCall(
      nextCall(options.deadline === undefined ? { ...options, deadline: Date.now() + ms } : options),
    );
