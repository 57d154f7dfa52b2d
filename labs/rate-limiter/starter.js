// Sliding-log rate limiter: see the task on the left.
// createLimiter({ limit, windowMs }) -> { hit(key, now) -> { allowed, remaining, retryAfterMs } }

function createLimiter({ limit, windowMs }) {
  // TODO: remember, per key, when the allowed hits happened.
  return {
    hit(key, now) {
      return { allowed: true, remaining: limit, retryAfterMs: 0 };
    },
  };
}
