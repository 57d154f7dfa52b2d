// Reference solution: proves the lab is solvable (`labdeck labs check`). Not shown to learners.
function createLimiter({ limit, windowMs }) {
  const logs = new Map(); // key -> timestamps of allowed hits, oldest first
  return {
    hit(key, now) {
      let log = logs.get(key);
      if (!log) {
        log = [];
        logs.set(key, log);
      }
      let expired = 0;
      while (expired < log.length && log[expired] <= now - windowMs) expired++;
      if (expired > 0) log.splice(0, expired);
      if (log.length < limit) {
        log.push(now);
        return { allowed: true, remaining: limit - log.length, retryAfterMs: 0 };
      }
      return { allowed: false, remaining: 0, retryAfterMs: log[0] + windowMs - now };
    },
  };
}
