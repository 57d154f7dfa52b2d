// Grader harness: evaluated before the learner's code, with intrinsics captured by the prelude,
// so redefining JSON or Array methods in a solution cannot change what is reported.
function __labdeck_case(input) {
  const L = __labdeck;
  if (typeof createLimiter !== 'function') {
    throw new TypeError('define a global function createLimiter({ limit, windowMs })');
  }
  const limiter = createLimiter({ limit: input.limit, windowMs: input.windowMs });
  if (limiter === null || typeof limiter !== 'object' || typeof limiter.hit !== 'function') {
    throw new TypeError('createLimiter must return an object with a hit(key, now) method');
  }
  const out = [];
  for (let i = 0; i < input.hits.length; i++) {
    const hit = input.hits[i];
    const d = limiter.hit(hit[0], hit[1]);
    if (d === null || typeof d !== 'object') {
      throw new TypeError('hit #' + (i + 1) + ' returned ' + String(d) + ' instead of { allowed, remaining, retryAfterMs }');
    }
    out[i] = { allowed: d.allowed === true, remaining: L.toNumber(d.remaining), retryAfterMs: L.toNumber(d.retryAfterMs) };
  }
  return L.stringify(out);
}
