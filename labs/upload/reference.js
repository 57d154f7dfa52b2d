// Reference solution: a byte-level state machine that keeps only the record being read.
function createAggregator() {
  const NUMBER = /^-?[0-9]+(\.[0-9]+)?$/;
  const START_RECORD = 0, START_FIELD = 1, IN_FIELD = 2, IN_QUOTED = 3, QUOTE_IN_QUOTED = 4;

  let head = [];            // the first bytes, until we know whether they are a BOM
  let headDone = false;
  let state = START_RECORD;
  let buf = new Uint8Array(1024); // unescaped bytes of the current record
  let len = 0;
  let ends = [];            // where each field of the current record ends in buf
  let lines = 0;            // line terminators seen (LF, CRLF or a lone CR)
  let prevCR = false;
  let recordLine = 1;
  let columns = null;
  let stats = null;
  let rows = 0, invalidRows = 0;
  const firstInvalidLines = [];

  function grow() {
    const bigger = new Uint8Array(buf.length * 2);
    bigger.set(buf);
    buf = bigger;
  }

  // A character outside the BMP is two UTF-16 code units but one code point.
  function codePoints(s) {
    if (!/[\ud800-\udbff]/.test(s)) return s.length;
    return s.length - s.match(/[\ud800-\udbff]/g).length;
  }

  function endRecord() {
    const values = [];
    let start = 0;
    for (let i = 0; i < ends.length; i++) {
      values.push(decodeUtf8(buf.subarray(start, ends[i])));
      start = ends[i];
    }
    len = 0;
    ends = [];
    if (columns === null) {
      columns = values;
      stats = values.map((name) => ({ name, filled: 0, numeric: null, longest: 0, numbers: true }));
      return;
    }
    rows++;
    if (values.length !== columns.length) {
      invalidRows++;
      if (firstInvalidLines.length < 10) firstInvalidLines.push(recordLine);
      return;
    }
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === '') continue;
      const s = stats[i];
      s.filled++;
      const n = codePoints(v);
      if (n > s.longest) s.longest = n;
      if (!s.numbers) continue;
      if (!NUMBER.test(v)) { s.numbers = false; s.numeric = null; continue; }
      const x = Number(v);
      if (s.numeric === null) s.numeric = { sum: x, min: x, max: x };
      else {
        s.numeric.sum += x;
        if (x < s.numeric.min) s.numeric.min = x;
        if (x > s.numeric.max) s.numeric.max = x;
      }
    }
  }

  function feed(bytes) {
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      const terminator = b === 10 || b === 13;
      switch (state) {
        case START_RECORD:
          if (terminator) break;
          recordLine = lines + 1;
          state = START_FIELD;
          // falls through: this byte starts the first field
        case START_FIELD:
          if (b === 34) { state = IN_QUOTED; break; }
          // falls through
        case IN_FIELD:
          if (b === 44) { ends.push(len); state = START_FIELD; }
          else if (terminator) { ends.push(len); endRecord(); state = START_RECORD; }
          else { if (len === buf.length) grow(); buf[len++] = b; state = IN_FIELD; }
          break;
        case IN_QUOTED:
          if (b === 34) state = QUOTE_IN_QUOTED;
          else { if (len === buf.length) grow(); buf[len++] = b; }
          break;
        case QUOTE_IN_QUOTED:
          if (b === 34) { if (len === buf.length) grow(); buf[len++] = b; state = IN_QUOTED; }
          else if (b === 44) { ends.push(len); state = START_FIELD; }
          else if (terminator) { ends.push(len); endRecord(); state = START_RECORD; }
          else { if (len === buf.length) grow(); buf[len++] = b; state = IN_FIELD; }
          break;
      }
      if (b === 13 || (b === 10 && !prevCR)) lines++;
      prevCR = b === 13;
    }
  }

  return {
    push(chunk) {
      if (!headDone) {
        let i = 0;
        while (head.length < 3 && i < chunk.length) head.push(chunk[i++]);
        if (head.length < 3) return;
        headDone = true;
        const bom = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf;
        if (!bom) feed(head);
        chunk = chunk.subarray(i);
      }
      feed(chunk);
    },
    finish() {
      if (!headDone) { headDone = true; feed(head); }
      if (state !== START_RECORD) { ends.push(len); endRecord(); }
      return {
        columns: columns || [],
        rows,
        invalidRows,
        firstInvalidLines,
        stats: (stats || []).map((s) => ({
          name: s.name, filled: s.filled, numeric: s.numbers ? s.numeric : null, longest: s.longest,
        })),
      };
    },
  };
}
