// labdeck sandbox prelude: evaluated before the lab harness and the learner's code.
// It captures the intrinsics the harness relies on (so a solution that overwrites JSON or
// Array.prototype cannot fool the grader) and installs console.*, which prints through the
// host function `__labdeck_print` (captured here, then removed from the global object).
(function () {
  'use strict';
  const g = globalThis;
  const print = g.__labdeck_print;
  delete g.__labdeck_print;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const StringCtor = String;
  const isArray = Array.isArray;
  const objectKeys = Object.keys;
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;

  function show(value, depth, seen) {
    if (typeof value === 'string') return depth === 0 ? value : stringify(value);
    if (typeof value === 'bigint') return StringCtor(value) + 'n';
    if (typeof value === 'function') return '[Function ' + (value.name || 'anonymous') + ']';
    if (value === null || typeof value !== 'object') return StringCtor(value);
    if (value instanceof Error) return StringCtor(value.stack || value);
    if (seen.indexOf(value) !== -1) return '[Circular]';
    if (depth > 3) return isArray(value) ? '[Array]' : '[Object]';
    seen.push(value);
    let out;
    if (isArray(value)) {
      const parts = [];
      for (let i = 0; i < value.length && i < 100; i++) parts.push(show(value[i], depth + 1, seen));
      if (value.length > 100) parts.push('... ' + (value.length - 100) + ' more');
      out = '[ ' + parts.join(', ') + ' ]';
    } else {
      const keys = objectKeys(value);
      const parts = [];
      for (let i = 0; i < keys.length && i < 100; i++) parts.push(keys[i] + ': ' + show(value[keys[i]], depth + 1, seen));
      out = '{ ' + parts.join(', ') + ' }';
    }
    seen.pop();
    return out;
  }

  function logger(prefix) {
    return function () {
      const parts = [];
      for (let i = 0; i < arguments.length; i++) {
        try { parts.push(show(arguments[i], 0, [])); } catch (e) { parts.push('[unprintable]'); }
      }
      print(prefix + parts.join(' '));
    };
  }

  const console = freeze({
    log: logger(''), info: logger(''), debug: logger(''),
    warn: logger('warn: '), error: logger('error: '),
  });
  defineProperty(g, 'console', { value: console, writable: false, configurable: false, enumerable: false });

  // What harnesses may use, captured before any learner code runs.
  defineProperty(g, '__labdeck', {
    value: freeze({
      stringify, parse, isArray, objectKeys,
      toNumber: Number, toBoolean: Boolean,
    }),
    writable: false, configurable: false, enumerable: false,
  });
})();
