// aws-local-stepfunctions uses Promise.withResolvers (Node 22+); Node 20 needs this polyfill,
// loaded with `node --import ./polyfill.mjs`.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
