// Step Functions' payload quota as run-local.mjs enforces it (QuotaStateMachine, checkPayload):
// 262,144 bytes of UTF-8 JSON for an execution's input, every state's input and output and every
// Task's parameters and result, and States.DataLimitExceeded, which no Retry or Catch takes,
// when one passes it. Lambda states are scripted handlers here (as in statemachine.test.mjs),
// and, for what crosses the Lambda Invoke API, a small local server that answers as
// local/ferry_local/lambdas.py does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { PAYLOAD_LIMIT_BYTES, QuotaStateMachine, payloadBytes, runLocal } from './run-local.mjs';

const LAMBDA = 'arn:aws:states:::lambda:invoke';
const FUNCTION = 'arn:aws:lambda:us-east-1:000000000000:function:ferry-task-status';
const EVERYTHING = ['States.ALL'];

/** `{"pad": "aaa…"}` weighing exactly `bytes` as JSON. */
function padded(bytes, char = 'a') {
  const overhead = payloadBytes({ pad: '' });
  const each = Buffer.byteLength(char, 'utf8');
  assert.equal((bytes - overhead) % each, 0, `${bytes} bytes cannot be made of ${char}`);
  const value = { pad: char.repeat((bytes - overhead) / each) };
  assert.equal(payloadBytes(value), bytes);
  return value;
}

/** One Task state (`Work`) that retries and catches everything, then `Done`; `Caught` is where
 * a Catch would go. `extra` is merged into the Task state. */
function taskDefinition(extra = {}) {
  return {
    StartAt: 'Work',
    States: {
      Work: {
        Type: 'Task',
        Resource: LAMBDA,
        Parameters: { FunctionName: FUNCTION, 'Payload.$': '$' },
        ResultSelector: { 'status.$': '$.StatusCode' },
        ResultPath: '$.result',
        Retry: [{ ErrorEquals: EVERYTHING, MaxAttempts: 3, IntervalSeconds: 1 }],
        Catch: [{ ErrorEquals: EVERYTHING, ResultPath: '$.error', Next: 'Caught' }],
        Next: 'Done',
        ...extra,
      },
      Caught: { Type: 'Pass', End: true },
      Done: { Type: 'Succeed' },
    },
  };
}

/** Runs `definition` on `input` with `answer(payload)` as every Task's result; returns what
 * happened: status, error and cause, the states entered, and the calls made. */
async function run(definition, input, answer = () => ({ StatusCode: 200, Payload: { ok: true } })) {
  const calls = [];
  const handlers = Object.fromEntries(Object.entries(definition.States)
    .filter(([, s]) => s.Type === 'Task')
    .map(([name]) => [name, async (params) => { calls.push(name); return answer(params.Payload); }]));
  const execution = new QuotaStateMachine(definition).run(input, {
    overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides: Object.fromEntries(Object.keys(handlers).map((s) => [s, 0])) },
  });
  const entered = [];
  const events = (async () => {
    for await (const event of execution.eventLogs) if (event.type === 'StateEntered') entered.push(event.state.name);
  })();
  try {
    const output = await execution.result;
    await events;
    return { status: 'SUCCEEDED', output, entered, calls };
  } catch (e) {
    await events;
    return { status: 'FAILED', error: e.cause?.name, cause: e.cause?.message, entered, calls };
  }
}

const passDefinition = (result) => ({
  StartAt: 'Make',
  States: { Make: { Type: 'Pass', Result: result, Next: 'Done' }, Done: { Type: 'Succeed' } },
});

test('a state output of exactly 262,144 bytes passes; one byte more fails the execution', async () => {
  assert.equal(PAYLOAD_LIMIT_BYTES, 262_144);
  const at = await run(passDefinition(padded(PAYLOAD_LIMIT_BYTES)), {});
  assert.equal(at.status, 'SUCCEEDED');
  assert.deepEqual(at.entered, ['Make', 'Done']);

  const over = await run(passDefinition(padded(PAYLOAD_LIMIT_BYTES + 1)), {});
  assert.equal(over.status, 'FAILED');
  assert.equal(over.error, 'States.DataLimitExceeded');
  assert.match(over.cause, /^The state\/task 'Make' returned a result with a size exceeding the maximum number of bytes service limit\. \(262,145 bytes of UTF-8 JSON; the limit is 262,144\)$/);
  assert.deepEqual(over.entered, ['Make'], 'the execution ends there');
});

test('a state output one byte over fails even though the state retries and catches States.ALL', async () => {
  // The Task's parameters and result are small; ResultPath puts the result beside an input that
  // leaves the output one byte over. Neither the Retry nor the Catch on States.ALL takes it.
  const definition = taskDefinition({ Parameters: { FunctionName: FUNCTION, Payload: { job: 1 } } });
  const result = { StatusCode: 200, Payload: {} };
  const output = (input) => ({ ...input, result: { status: 200 } });
  const input = padded(PAYLOAD_LIMIT_BYTES + 1 - (payloadBytes(output({ pad: '' })) - payloadBytes({ pad: '' })));
  assert.equal(payloadBytes(output(input)), PAYLOAD_LIMIT_BYTES + 1);

  const r = await run(definition, input, () => result);
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.DataLimitExceeded');
  assert.match(r.cause, /'Work' returned a result .* \(262,145 bytes/);
  assert.deepEqual(r.calls, ['Work'], 'not retried');
  assert.ok(!r.entered.includes('Caught'), 'not caught');

  // One byte less and the same state succeeds.
  const under = await run(definition, { pad: input.pad.slice(1) }, () => result);
  assert.equal(under.status, 'SUCCEEDED');
});

test('naming States.DataLimitExceeded in a Catch does not catch it either (the strict reading)', async () => {
  const definition = taskDefinition({
    Catch: [{ ErrorEquals: ['States.DataLimitExceeded'], Next: 'Caught' }, { ErrorEquals: EVERYTHING, Next: 'Caught' }],
  });
  const r = await run(definition, {}, () => ({ StatusCode: 200, Payload: padded(PAYLOAD_LIMIT_BYTES) }));
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.DataLimitExceeded');
  assert.ok(!r.entered.includes('Caught'));
});

test('a Lambda result over the quota fails the execution before ResultSelector makes it small', async () => {
  // The invoke result ({StatusCode, Payload}) is what is measured, not the state's output.
  const r = await run(taskDefinition(), { job: 1 }, () => ({ StatusCode: 200, Payload: padded(300_000) }));
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.DataLimitExceeded');
  assert.match(r.cause, /^The state\/task 'Work' returned a result with a size exceeding the maximum number of bytes service limit\. \(300,\d{3} bytes/);
  assert.deepEqual(r.calls, ['Work'], 'the function ran once: no retry');
  assert.deepEqual(r.entered, ['Work']);
});

test("a Task's parameters over the quota fail it before the function is called", async () => {
  // Within the quota as the state's input; twice over once Parameters copies it twice.
  const definition = taskDefinition({ Parameters: { FunctionName: FUNCTION, Payload: { 'a.$': '$.pad', 'b.$': '$.pad' } } });
  const r = await run(definition, padded(140_000));
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.DataLimitExceeded');
  assert.match(r.cause, /'Work' provided parameters with a size exceeding/);
  assert.deepEqual(r.calls, []);
});

test("an execution's input over the quota fails the execution at its first state", async () => {
  const r = await run(taskDefinition(), padded(PAYLOAD_LIMIT_BYTES + 1));
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.DataLimitExceeded');
  assert.match(r.cause, /'Work' received the execution's input with a size exceeding .* \(262,145 bytes/);
  assert.deepEqual(r.calls, []);
  assert.deepEqual(r.entered, []);
  assert.equal((await run(taskDefinition(), padded(200_000))).status, 'SUCCEEDED');
});

test('sizes are UTF-8 bytes, not characters', async () => {
  // 100,000 "é" are 200,000 bytes, plus the quotes and the rest of {"pad":"…"}.
  assert.equal(payloadBytes('é'.repeat(100_000)), 200_002);
  assert.equal(payloadBytes(padded(200_008, 'é')), 200_008);
  assert.equal((await run(passDefinition(padded(200_008, 'é')), {})).status, 'SUCCEEDED');
  // 262,146 bytes in 131,077 characters: far under the limit in characters, over it in bytes.
  const heavy = padded(PAYLOAD_LIMIT_BYTES + 2, 'é');
  assert.ok(JSON.stringify(heavy).length < PAYLOAD_LIMIT_BYTES);
  const r = await run(passDefinition(heavy), {});
  assert.equal(r.status, 'FAILED');
  assert.equal(r.error, 'States.DataLimitExceeded');
  assert.match(r.cause, /262,146 bytes/);
  // Four-byte characters too.
  assert.equal(payloadBytes('🚢'), 6);
});

test('Map and Parallel states are refused: their branches would run without the quota', () => {
  const definition = {
    StartAt: 'Fan',
    States: { Fan: { Type: 'Parallel', Branches: [{ StartAt: 'A', States: { A: { Type: 'Succeed' } } }], End: true } },
  };
  assert.throws(() => new QuotaStateMachine(definition), /Fan: Map and Parallel states run without the payload quota/);
});

// ---------------------------------------------------------------------------------------------
// Through the Lambda Invoke API (runLocal), answered as local/ferry_local/lambdas.py answers
// ---------------------------------------------------------------------------------------------

/** A Lambda Invoke API on a free port: `answers[functionName](payload)` → [status, headers, body]. */
async function lambdaServer(answers) {
  const server = createServer((req, res) => {
    const name = req.url.split('/')[3];
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      const [status, headers, answer] = answers[name](JSON.parse(body));
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(typeof answer === 'string' ? answer : JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** An Invoke state per function name, each catching everything into `Caught`. */
function invokeDefinition(name) {
  return {
    StartAt: 'Invoke',
    States: {
      Invoke: {
        Type: 'Task',
        Resource: LAMBDA,
        Parameters: { FunctionName: `arn:aws:lambda:us-east-1:000000000000:function:${name}`, 'Payload.$': '$' },
        Catch: [{ ErrorEquals: EVERYTHING, ResultPath: '$.error', Next: 'Caught' }],
        End: true,
      },
      Caught: { Type: 'Pass', End: true },
    },
  };
}

test('runLocal: an oversized function answer fails the execution; Lambda errors keep their names', async () => {
  const tooLarge = { errorType: 'Function.ResponseSizeTooLarge', errorMessage: 'Response payload size exceeded maximum allowed payload size (6291556 bytes).' };
  const server = await lambdaServer({
    // Under Lambda's 6 MB, over Step Functions' 256 KiB.
    big: () => [200, { 'x-amz-executed-version': '$LATEST' }, padded(300_000)],
    // What lambdas.py answers for a response over 6 MB, as Lambda's Invoke API does.
    huge: () => [200, { 'x-amz-function-error': 'Unhandled' }, tooLarge],
    // What lambdas.py answers for a request over 6 MB (HTTP 413, an Invoke API error).
    request: () => [413, { 'x-amzn-errortype': 'RequestTooLargeException' }, { Type: 'User', message: 'too large' }],
  });
  try {
    const go = (name) => runLocal({ lambdaUrl: server.url, definition: invokeDefinition(name), input: { job: 1 }, name: `payload-${name}` });
    const big = await go('big');
    assert.equal(big.status, 'FAILED');
    assert.equal(big.error, 'States.DataLimitExceeded');
    assert.match(big.cause, /'Invoke' returned a result with a size exceeding the maximum number of bytes service limit\. \(300,\d{3} bytes/);

    const huge = await go('huge');
    assert.equal(huge.status, 'SUCCEEDED', 'a function error: catchable');
    assert.equal(huge.output.error.Error, 'Function.ResponseSizeTooLarge');
    assert.deepEqual(JSON.parse(huge.output.error.Cause), tooLarge);

    const request = await go('request');
    assert.equal(request.output.error.Error, 'Lambda.RequestTooLargeException');
  } finally {
    await server.close();
  }
});
