// Grader harness: evaluated before the learner's code, with intrinsics captured by the prelude,
// so redefining JSON or Array methods in a solution cannot change what is reported.
function __labdeck_case(input) {
  const L = __labdeck;
  if (typeof createConsumer !== 'function') {
    throw new TypeError('define a global function createConsumer(policy)');
  }
  const p = input.policy;
  const consumer = createConsumer({
    mainTopic: p.mainTopic, maxAttempts: p.maxAttempts, baseDelayMs: p.baseDelayMs,
    multiplier: p.multiplier, maxDelayMs: p.maxDelayMs,
  });
  if (consumer === null || typeof consumer !== 'object' || typeof consumer.deliver !== 'function') {
    throw new TypeError('createConsumer must return an object with a deliver(message, now) method');
  }
  const text = (v) => (typeof v === 'string' ? v : null);
  const out = [];
  for (let i = 0; i < input.deliveries.length; i++) {
    const now = input.deliveries[i][0];
    const m = input.deliveries[i][1];
    // A fresh copy per delivery: what a solution does to one message never leaks into another.
    const message = { eventId: m.eventId, topic: m.topic, attempt: m.attempt, outcome: m.outcome };
    if (m.dueAt !== undefined) message.dueAt = m.dueAt;
    const d = consumer.deliver(message, now);
    if (d === null || typeof d !== 'object') {
      throw new TypeError('delivery #' + (i + 1) + ' returned ' + String(d) + ' instead of a decision { action, ... }');
    }
    const action = text(d.action);
    // Only the fields of the action are kept, so extra fields never make an answer wrong.
    if (action === 'wait') {
      out[i] = { action, untilMs: L.toNumber(d.untilMs) };
    } else if (action === 'retry') {
      out[i] = {
        action, topic: text(d.topic), attempt: L.toNumber(d.attempt),
        delayMs: L.toNumber(d.delayMs), dueAt: L.toNumber(d.dueAt),
      };
    } else if (action === 'dead_letter') {
      out[i] = { action, topic: text(d.topic), reason: text(d.reason) };
    } else {
      out[i] = { action };
    }
  }
  return L.stringify(out);
}
