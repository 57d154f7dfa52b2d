// Grader harness for the streaming-upload challenge. Evaluated before the learner's code, so
// everything it relies on is captured here; only `__labdeck_case` and the `decodeUtf8` helper
// become globals.
//
// A test input is one of:
//   { csv: "text", cuts: [byte offsets] }      the UTF-8 bytes of `csv`, cut before each offset
//   { csv: "text", chunkSize: n }              the same bytes in chunks of n bytes
//   { bytes: [0..255, ...], cuts | chunkSize } raw bytes (for invalid UTF-8)
//   { generate: { seed, rows, chunkSize } }    a large file generated chunk by chunk right here,
//                                              so no input ever holds the whole file
// Every chunk is a fresh Uint8Array: keeping them keeps the whole file in memory.
var __labdeck_case;
var decodeUtf8;
(function () {
  'use strict';
  const L = __labdeck;
  const U8 = Uint8Array;
  const fromCharCode = String.fromCharCode;
  const apply = Function.prototype.apply;
  const callApply = apply.bind(fromCharCode);
  const regexpTest = Function.prototype.call.bind(RegExp.prototype.test);
  const NON_ASCII = /[\x80-\xff]/;

  // UTF-8 bytes to a string; each invalid sequence (a maximal ill-formed subpart) becomes one
  // U+FFFD, exactly like Rust's String::from_utf8_lossy and the WHATWG decoder.
  decodeUtf8 = function decodeUtf8(bytes) {
    const n = bytes.length;
    if (n <= 8192) {
      // Plain ASCII (the common case) needs no decoding: bytes are code units.
      const latin1 = callApply(null, bytes);
      if (!regexpTest(NON_ASCII, latin1)) return latin1;
    }
    let out = '';
    let units = [];
    let i = 0;
    while (i < n) {
      const b = bytes[i];
      if (b < 0x80) {
        units.push(b);
        i++;
      } else {
        let need = 0, cp = 0, lower = 0x80, upper = 0xbf;
        if (b >= 0xc2 && b <= 0xdf) { need = 1; cp = b & 0x1f; }
        else if (b >= 0xe0 && b <= 0xef) {
          need = 2; cp = b & 0x0f;
          if (b === 0xe0) lower = 0xa0;
          if (b === 0xed) upper = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
          need = 3; cp = b & 0x07;
          if (b === 0xf0) lower = 0x90;
          if (b === 0xf4) upper = 0x8f;
        }
        let j = i + 1, got = 0;
        while (got < need && j < n) {
          const c = bytes[j];
          if (c < lower || c > upper) break;
          cp = (cp << 6) | (c & 0x3f);
          lower = 0x80; upper = 0xbf;
          j++; got++;
        }
        if (need === 0 || got < need) {
          units.push(0xfffd);
        } else if (cp > 0xffff) {
          cp -= 0x10000;
          units.push(0xd800 | (cp >> 10), 0xdc00 | (cp & 0x3ff));
        } else {
          units.push(cp);
        }
        i = need === 0 ? i + 1 : j;
      }
      if (units.length >= 8192) { out += callApply(null, units); units = []; }
    }
    return out + callApply(null, units);
  };

  // Writes the UTF-8 encoding of strings into fixed-size chunks, handing each full one on.
  function ChunkWriter(size, emit) {
    let chunk = new U8(size);
    let pos = 0;
    function put(b) {
      chunk[pos++] = b;
      if (pos === size) { emit(chunk); chunk = new U8(size); pos = 0; }
    }
    this.write = function (s) {
      for (let i = 0; i < s.length; i++) {
        let c = s.charCodeAt(i);
        if (c < 0x80) { put(c); continue; }
        if (c < 0x800) { put(0xc0 | (c >> 6)); put(0x80 | (c & 0x3f)); continue; }
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
          const d = s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            i++;
            c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            put(0xf0 | (c >> 18)); put(0x80 | ((c >> 12) & 0x3f));
            put(0x80 | ((c >> 6) & 0x3f)); put(0x80 | (c & 0x3f));
            continue;
          }
        }
        put(0xe0 | (c >> 12)); put(0x80 | ((c >> 6) & 0x3f)); put(0x80 | (c & 0x3f));
      }
    };
    this.ascii = function (s) {
      for (let i = 0; i < s.length; i++) {
        chunk[pos++] = s.charCodeAt(i);
        if (pos === size) { emit(chunk); chunk = new U8(size); pos = 0; }
      }
    };
    this.bytes = function (b) {
      if (pos + b.length < size) { chunk.set(b, pos); pos += b.length; return; }
      for (let i = 0; i < b.length; i++) put(b[i]);
    };
    this.end = function () {
      if (pos > 0) emit(chunk.slice(0, pos));
    };
  }

  // The large-file generator. labdeck's Rust grader runs the same one (src/labs/upload/
  // challenge.rs, `generated_rows`) to compute the expected summary: change both or neither.
  // Fixed pieces are encoded once; numbers are ASCII and written digit by digit.
  const NAMES = ['Ada', 'Zoë', '"Smith, J"', '李雷', 'Ünal', '"O""Brien"', '😀 Smiley', 'Bob'];
  const CITIES = ['Kraków', 'Paris', 'São Paulo', '東京', 'Oslo', '"Washington, D.C."'];
  const NOTES = [',"multi\nline, note"', ',"said ""hi"""', ',ok', ',ok', ',ok'];
  function generate(spec, emit) {
    let x = ((spec.seed ^ 0x9e3779b9) >>> 0) || 1;
    function next() {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      x >>>= 0;
      return x;
    }
    const names = NAMES.map(utf8Of), cities = CITIES.map(utf8Of), notes = NOTES.map(utf8Of);
    const empty = utf8Of(','), lf = utf8Of('\n'), crlf = utf8Of('\r\n');
    const out = new ChunkWriter(spec.chunkSize, emit);
    out.write('\ufeffid,name,amount,city,note\r\n');
    for (let id = 1; id <= spec.rows; id++) {
      const name = names[next() % names.length];
      const a = next();
      const cents = (a >>> 8) % 10000000;
      const frac = cents % 100;
      const amount = ((a & 1) ? '-' : '') + ((cents - frac) / 100) + (frac < 10 ? '.0' : '.') + frac;
      const city = cities[next() % cities.length];
      const n = next() % 16;
      const short = next() % 500 === 0;
      const eol = next() % 4 === 0 ? lf : crlf;
      out.ascii(id + ',');
      out.bytes(name);
      out.ascii(',' + amount + ',');
      out.bytes(city);
      if (!short) out.bytes(n < notes.length ? notes[n] : empty);
      out.bytes(eol);
    }
    out.end();
  }

  function utf8Of(text) {
    let parts = [];
    let total = 0;
    const w = new ChunkWriter(4096, function (c) { parts.push(c); total += c.length; });
    w.write(text);
    w.end();
    const all = new U8(total);
    let at = 0;
    for (let i = 0; i < parts.length; i++) { all.set(parts[i], at); at += parts[i].length; }
    return all;
  }

  function feed(input, push) {
    if (input.generate) {
      generate(input.generate, push);
      return;
    }
    const data = input.bytes ? U8.from(input.bytes) : utf8Of(input.csv);
    let cuts = input.cuts;
    if (!cuts) {
      cuts = [];
      for (let at = input.chunkSize; at < data.length; at += input.chunkSize) cuts.push(at);
    }
    let from = 0;
    for (let i = 0; i <= cuts.length; i++) {
      const to = i < cuts.length ? cuts[i] : data.length;
      push(data.slice(from, to));
      from = to;
    }
  }

  __labdeck_case = function (input) {
    if (typeof createAggregator !== 'function') {
      throw new TypeError('define a global function createAggregator()');
    }
    const agg = createAggregator();
    if (agg === null || typeof agg !== 'object' || typeof agg.push !== 'function' ||
        typeof agg.finish !== 'function') {
      throw new TypeError('createAggregator() must return an object with push(chunk) and finish() methods');
    }
    feed(input, function (chunk) { agg.push(chunk); });
    const summary = agg.finish();
    if (summary === null || typeof summary !== 'object') {
      throw new TypeError('finish() returned ' + String(summary) + ' instead of a summary object');
    }
    return L.stringify(summary);
  };
})();
