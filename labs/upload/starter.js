// Streaming CSV aggregator: see the task on the left.
// createAggregator() -> { push(chunk: Uint8Array), finish() -> summary }
// decodeUtf8(bytes) turns UTF-8 bytes into a string (the sandbox has no TextDecoder).

function createAggregator() {
  let text = '';
  return {
    push(chunk) {
      // TODO: this keeps the whole file in memory and decodes each chunk on its own,
      // which breaks characters cut between chunks.
      text += decodeUtf8(chunk);
    },
    finish() {
      // TODO: quoted fields may hold commas and newlines; lines may end in \r\n or \r.
      const lines = text.split('\n').filter((line) => line !== '');
      const columns = lines.length > 0 ? lines[0].split(',') : [];
      const stats = columns.map((name) => ({ name, filled: 0, numeric: null, longest: 0 }));
      let invalidRows = 0;
      const firstInvalidLines = [];
      for (let i = 1; i < lines.length; i++) {
        const values = lines[i].split(',');
        if (values.length !== columns.length) {
          invalidRows++;
          if (firstInvalidLines.length < 10) firstInvalidLines.push(i + 1);
          continue;
        }
        values.forEach((v, c) => {
          if (v === '') return;
          stats[c].filled++;
          stats[c].longest = Math.max(stats[c].longest, v.length);
        });
      }
      return { columns, rows: lines.length - 1, invalidRows, firstInvalidLines, stats };
    },
  };
}
