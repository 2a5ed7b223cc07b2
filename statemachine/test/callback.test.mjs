// How run-local.mjs readies callback states (`.waitForTaskToken`) for aws-local-stepfunctions,
// which does not run them itself. Test infrastructure testing test infrastructure: the
// emulation against the real emulator (tokens answered through the Step Functions API) is
// tested in local/tests/test_callback_runner.py; here, what needs neither an emulator nor a
// function: the definition handed to the library, the token in the payload, the limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateMachine } from 'aws-local-stepfunctions';
import { TOKEN_PLACEHOLDER, limitMs, loadDefinition, newTaskToken, prepareCallbackStates, withToken } from './run-local.mjs';

/** A definition with one callback state shaped like ferry.asl.json's AwaitEnd. */
function callbackDefinition(extra = {}) {
  return {
    StartAt: 'AwaitEnd',
    States: {
      AwaitEnd: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
        Parameters: {
          FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:ferry-lane',
          Payload: {
            action: 'await', 'token.$': '$$.Task.Token',
            'heartbeat_seconds.$': '$.status.await.heartbeat_seconds',
            'timeout_seconds.$': '$.status.await.timeout_seconds',
          },
        },
        HeartbeatSecondsPath: '$.status.await.heartbeat_seconds',
        TimeoutSecondsPath: '$.status.await.timeout_seconds',
        ResultPath: '$.woken',
        Catch: [{ ErrorEquals: ['States.HeartbeatTimeout', 'States.Timeout'], ResultPath: '$.woken', Next: 'Done' }],
        Next: 'Done',
        ...extra,
      },
      Done: { Type: 'Succeed' },
    },
  };
}

test('callback states lose their heartbeat and timeout fields to the runner, and the library never times them out', () => {
  const definition = callbackDefinition();
  const limits = prepareCallbackStates(definition);
  assert.deepEqual(limits, {
    AwaitEnd: { heartbeat: { payloadField: 'heartbeat_seconds' }, timeout: { payloadField: 'timeout_seconds' } },
  });
  const state = definition.States.AwaitEnd;
  assert.equal(state.HeartbeatSecondsPath, undefined);
  assert.equal(state.TimeoutSecondsPath, undefined);
  assert.equal(state.HeartbeatSeconds, undefined);
  // Above the library's 60-s default, below what setTimeout can hold.
  assert.ok(state.TimeoutSeconds > 60 * 60 * 24 * 7 && state.TimeoutSeconds * 1000 < 2 ** 31);
});

test('fixed HeartbeatSeconds and TimeoutSeconds are read from the definition', () => {
  const definition = callbackDefinition({ HeartbeatSeconds: 30, TimeoutSeconds: 600, HeartbeatSecondsPath: undefined, TimeoutSecondsPath: undefined });
  assert.deepEqual(prepareCallbackStates(definition).AwaitEnd, { heartbeat: { seconds: 30 }, timeout: { seconds: 600 } });
});

test('other states are left alone', () => {
  const definition = loadDefinition();
  const before = JSON.stringify(Object.fromEntries(Object.entries(definition.States).filter(([, s]) => !String(s.Resource).endsWith('.waitForTaskToken'))));
  prepareCallbackStates(definition);
  const after = JSON.stringify(Object.fromEntries(Object.entries(definition.States).filter(([, s]) => !String(s.Resource).endsWith('.waitForTaskToken'))));
  assert.equal(after, before);
});

test('what cannot be emulated faithfully is refused by name', () => {
  assert.throws(() => prepareCallbackStates(callbackDefinition({ Resource: 'arn:aws:states:::sqs:sendMessage.waitForTaskToken' })), /AwaitEnd: only arn:aws:states:::lambda:invoke.waitForTaskToken/);
  assert.throws(() => prepareCallbackStates(callbackDefinition({ Retry: [{ ErrorEquals: ['States.TaskFailed'] }] })), /States.TaskFailed/);
  assert.throws(() => prepareCallbackStates(callbackDefinition({ HeartbeatSecondsPath: '$.elsewhere' })), /HeartbeatSecondsPath \$\.elsewhere must also be passed as Parameters.Payload\["heartbeat_seconds.\$"\]/);
  assert.throws(() => prepareCallbackStates(callbackDefinition({ InputPath: '$.status' })), /no InputPath/);
});

test('$$.Task.Token resolves in the library, and every token put in the payload is a new one', async () => {
  const definition = callbackDefinition();
  prepareCallbackStates(definition);
  const payloads = [];
  const machine = new StateMachine(definition);
  const run = machine.run({ status: { await: { heartbeat_seconds: 900, timeout_seconds: 3600 } } }, {
    overrides: { taskResourceLocalHandlers: { AwaitEnd: async (params) => { payloads.push(params.Payload); return { woke: true }; } } },
    context: { Task: { Token: TOKEN_PLACEHOLDER } },
  });
  const output = await run.result;
  assert.deepEqual(output.woken, { woke: true });
  assert.equal(payloads[0].token, TOKEN_PLACEHOLDER);
  assert.equal(payloads[0].heartbeat_seconds, 900);
  const a = withToken(payloads[0], newTaskToken());
  const b = withToken(payloads[0], newTaskToken());
  assert.notEqual(a.token, b.token);
  assert.match(a.token, /^AQ[A-Za-z0-9_-]{128}$/);
  assert.deepEqual({ ...a, token: undefined }, { ...payloads[0], token: undefined });
});

test('limits are scaled like Waits and must be positive integers', () => {
  const payload = { heartbeat_seconds: 900, timeout_seconds: 3600 };
  assert.equal(limitMs({ payloadField: 'heartbeat_seconds' }, payload, 0.01), 9000);
  assert.equal(limitMs({ payloadField: 'timeout_seconds' }, payload, 1), 3_600_000);
  assert.equal(limitMs({ seconds: 30 }, payload, 0.5), 15_000);
  assert.equal(limitMs(null, payload, 1), null);
  for (const bad of [undefined, 0, 1.5, '900']) {
    // Neither retried nor caught, not even by States.ALL: the execution fails.
    assert.throws(() => limitMs({ payloadField: 'heartbeat_seconds' }, { heartbeat_seconds: bad }, 1), { name: 'States.Runtime', isCatchable: false, isRetryable: false });
  }
});
