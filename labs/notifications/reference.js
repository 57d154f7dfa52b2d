// Reference solution: proves the lab is solvable (`labdeck labs check`). Not shown to learners.
function createConsumer({ mainTopic, maxAttempts, baseDelayMs, multiplier, maxDelayMs }) {
  const deadLetterTopic = mainTopic + '-dlt';
  const events = new Map(); // eventId -> { handled, lastAttempt }

  function delayBefore(attempt) {
    let delay = baseDelayMs;
    for (let n = 2; n < attempt && delay < maxDelayMs; n++) delay *= multiplier;
    return Math.min(delay, maxDelayMs);
  }

  function retryTopic(delayMs) {
    if (delayMs > 0 && delayMs % 60000 === 0) return mainTopic + '-retry-' + delayMs / 60000 + 'm';
    if (delayMs > 0 && delayMs % 1000 === 0) return mainTopic + '-retry-' + delayMs / 1000 + 's';
    return mainTopic + '-retry-' + delayMs + 'ms';
  }

  return {
    deliver(message, now) {
      let state = events.get(message.eventId);
      if (!state) {
        state = { handled: false, lastAttempt: 0 };
        events.set(message.eventId, state);
      }
      let attempt;
      if (message.topic === deadLetterTopic) {
        if (state.handled) return { action: 'duplicate' };
        state.lastAttempt = 0; // a replay starts the event over
        attempt = 1;
      } else {
        attempt = Math.max(message.attempt, 1);
        if (state.handled || attempt === state.lastAttempt) return { action: 'duplicate' };
        if (attempt < state.lastAttempt) return { action: 'stale' };
        if (message.dueAt !== undefined && message.dueAt > now) return { action: 'wait', untilMs: message.dueAt };
      }
      state.lastAttempt = attempt;
      if (message.outcome === 'ok') {
        state.handled = true;
        return { action: 'handled' };
      }
      if (message.outcome === 'fatal') return { action: 'dead_letter', topic: deadLetterTopic, reason: 'fatal' };
      if (attempt >= maxAttempts) return { action: 'dead_letter', topic: deadLetterTopic, reason: 'exhausted' };
      const delayMs = delayBefore(attempt + 1);
      return { action: 'retry', topic: retryTopic(delayMs), attempt: attempt + 1, delayMs, dueAt: now + delayMs };
    },
  };
}
