// A retrying, idempotent consumer: see the task on the left.
// createConsumer({ mainTopic, maxAttempts, baseDelayMs, multiplier, maxDelayMs })
//   -> { deliver(message, now) -> decision }

function createConsumer({ mainTopic, maxAttempts, baseDelayMs, multiplier, maxDelayMs }) {
  // TODO: remember, per event id, whether it was handled and which attempt ran last.
  return {
    deliver(message, now) {
      if (message.outcome === 'ok') {
        return { action: 'handled' };
      }
      // TODO: retries with backoff, the dead-letter topic, duplicates, stale and early retries.
      return { action: 'dead_letter', topic: mainTopic + '-dlt', reason: 'fatal' };
    },
  };
}
