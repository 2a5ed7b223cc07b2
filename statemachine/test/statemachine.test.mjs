// The deployed definition (statemachine/ferry.asl.json, exactly as template.yaml references
// it) run with aws-local-stepfunctions. Every state runs; the four Lambda states are simulated
// by scripted handlers that speak the functions' real contracts (docs/functions.md), and
// failures use the functions' real error_types, so Retry and Catch are exercised as deployed.
// Waits and retry pauses are shortened to 0 ms; nothing else is overridden.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { StateMachine } from 'aws-local-stepfunctions';

const definitionText = readFileSync(new URL('../ferry.asl.json', import.meta.url), 'utf8');
const SUBSTITUTIONS = ['StartTaskFunctionArn', 'TaskStatusFunctionArn', 'CancelTaskFunctionArn', 'NotifyFunctionArn'];
const definition = JSON.parse(
  SUBSTITUTIONS.reduce(
    (text, name) => text.replaceAll('${' + name + '}', `arn:aws:lambda:us-east-1:111122223333:function:${name}`),
    definitionText,
  ),
);
const LAMBDA_STATES = ['StartTask', 'GetStatus', 'CancelTask', 'Notify', 'NotifyCouldNotStart', 'NotifyLostTrack'];
const FUNCTION_OF = {
  StartTask: 'StartTaskFunctionArn',
  GetStatus: 'TaskStatusFunctionArn',
  CancelTask: 'CancelTaskFunctionArn',
  Notify: 'NotifyFunctionArn',
  NotifyCouldNotStart: 'NotifyFunctionArn',
  NotifyLostTrack: 'NotifyFunctionArn',
};
const WAIT_STATES = Object.entries(definition.States).filter(([, s]) => s.Type === 'Wait').map(([n]) => n);

const JOB = { name: 'nightly-export', kind: 'fsx_export', file_system_id: 'fs-0123456789abcdef0', timeout_seconds: 3600 };
const TASK = { service: 'fsx', file_system_id: 'fs-0123456789abcdef0', task_id: 'task-0123456789abcdef0' };

/** A Lambda error as the lambda:invoke integration reports it: Error = errorType, Cause = the
 * function's error document. */
function lambdaError(errorType, errorMessage) {
  const e = new Error(JSON.stringify({ errorType, errorMessage }));
  e.name = errorType;
  return e;
}

function status(phase, lifecycle, extra = {}) {
  const done = ['succeeded', 'failed', 'canceled'].includes(phase);
  return {
    task: TASK, phase, lifecycle, done, timed_out: false, age_seconds: 60, next_poll_seconds: 15,
    counts: { total: 10, succeeded: done ? 10 : 3, failed: 0 }, timings: { created_at: '2026-11-21T01:00:00Z' },
    ...extra,
  };
}

/**
 * Runs the definition with `script`: for each Lambda state, a list of results (or errors) it
 * returns on successive calls. Returns the calls made, the result or error, and the state path.
 */
async function run(script, input = { job: JOB, extra: 'dropped by Init' }, name = 'nightly-export-2026-11-21') {
  const calls = Object.fromEntries(LAMBDA_STATES.map((s) => [s, []]));
  const handlers = Object.fromEntries(
    LAMBDA_STATES.map((state) => [
      state,
      async (input) => {
        // The lambda:invoke integration's parameters: the function (from the template's
        // DefinitionSubstitutions) and the payload the function receives.
        assert.equal(input.FunctionName, `arn:aws:lambda:us-east-1:111122223333:function:${FUNCTION_OF[state]}`);
        const payload = input.Payload;
        calls[state].push(payload);
        const steps = script[state] ?? [];
        const step = steps[Math.min(calls[state].length, steps.length) - 1];
        if (step === undefined) throw new Error(`${state} was not expected (call ${calls[state].length})`);
        if (step instanceof Error) throw step;
        return { StatusCode: 200, Payload: typeof step === 'function' ? step(payload) : step };
      },
    ]),
  );
  const machine = new StateMachine(definition);
  const execution = machine.run(input, {
    overrides: {
      taskResourceLocalHandlers: handlers,
      waitTimeOverrides: Object.fromEntries(WAIT_STATES.map((s) => [s, 0])),
      retryIntervalOverrides: Object.fromEntries(LAMBDA_STATES.map((s) => [s, 0])),
    },
    context: { Execution: { Name: name, Id: `arn:exec:${name}`, Input: input, StartTime: '2026-11-21T01:00:00Z' } },
  });
  const visited = [];
  const collect = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === 'StateEntered') visited.push(event.state.name);
    }
  })();
  let result;
  let error;
  try {
    result = await execution.result;
  } catch (e) {
    error = e;
  }
  await collect;
  return { calls, result, error, visited };
}

const notified = { outcome: 'succeeded', topic_arn: 'arn:aws:sns:us-east-1:111122223333:t', message_ids: ['m1', 'm2'], paths_truncated: false };

test('a task that succeeds is polled until done, reported, and the execution succeeds', async () => {
  const { calls, result, error, visited } = await run({
    StartTask: [{ task: TASK, idempotency_key: 'ferry-x', next_poll_seconds: 15, started_at: '2026-11-21T01:00:00Z' }],
    GetStatus: [status('pending', 'PENDING'), status('running', 'EXECUTING'), status('succeeded', 'SUCCEEDED')],
    Notify: [notified],
  });
  assert.equal(error, undefined);
  assert.deepEqual(calls.StartTask, [{ job: JOB, execution: 'nightly-export-2026-11-21' }], 'only the job and the execution name');
  assert.equal(calls.GetStatus.length, 3);
  assert.deepEqual(calls.GetStatus[0], { job: JOB, task: TASK, cancel_requested: false });
  assert.equal(calls.CancelTask.length, 0);
  const report = calls.Notify[0];
  assert.equal(report.status.phase, 'succeeded');
  assert.equal(report.timed_out, false);
  assert.deepEqual(report.task, TASK);
  assert.equal(report.execution, 'nightly-export-2026-11-21');
  assert.equal(result.extra, undefined, 'Init drops what the job does not need');
  assert.deepEqual(visited.slice(0, 5), ['Init', 'KeepJob', 'StartTask', 'WaitFirst', 'GetStatus']);
  assert.equal(visited.at(-1), 'Succeeded');
});

test('a busy file system is retried until it is free, with the same execution name', async () => {
  const conflict = lambdaError('TaskConflict', 'task conflict: An existing data repository task is currently executing');
  const { calls, error } = await run({
    StartTask: [conflict, conflict, conflict, { task: TASK, next_poll_seconds: 15 }],
    GetStatus: [status('succeeded', 'SUCCEEDED')],
    Notify: [notified],
  });
  assert.equal(error, undefined);
  assert.equal(calls.StartTask.length, 4);
  assert.ok(calls.StartTask.every((c) => c.execution === 'nightly-export-2026-11-21'), 'same idempotency identity on every attempt');
});

test('two executions of one schedule occurrence start with the same identity', async () => {
  // EventBridge Scheduler delivers at least once: a duplicate delivery is a second execution
  // with another name, and the same <aws.scheduler.schedule-arn>@<aws.scheduler.scheduled-time>.
  const occurrence = 'arn:aws:scheduler:us-east-1:111122223333:schedule/default/ferry-export@2026-11-22T01:00:00Z';
  const script = () => ({
    StartTask: [{ task: TASK, next_poll_seconds: 15 }],
    GetStatus: [status('succeeded', 'SUCCEEDED')],
    Notify: [notified],
  });
  const first = await run(script(), { job: JOB, occurrence }, '4f1c1c2e-first-delivery');
  const second = await run(script(), { job: JOB, occurrence }, '9a7d0b13-second-delivery');
  assert.equal(first.error, undefined);
  assert.equal(second.error, undefined);
  assert.deepEqual(first.calls.StartTask, [{ job: JOB, execution: occurrence }]);
  assert.deepEqual(second.calls.StartTask, first.calls.StartTask, 'same identity, so the same FSx token / DataSync tag');
  assert.equal(first.visited[1], 'KeepJobForOccurrence');
  assert.equal(second.calls.Notify[0].execution, '9a7d0b13-second-delivery', 'reports still name their own execution');
  assert.equal(first.result.occurrence, undefined, 'the occurrence does not travel past StartTask');
});

test('the conflict retrier waits for hours, not minutes', () => {
  const retrier = definition.States.StartTask.Retry.find((r) => r.ErrorEquals.includes('TaskConflict'));
  let total = 0;
  for (let attempt = 0; attempt < retrier.MaxAttempts; attempt++) {
    total += Math.min(retrier.IntervalSeconds * retrier.BackoffRate ** attempt, retrier.MaxDelaySeconds);
  }
  assert.ok(total > 6 * 3600, `conflict retries span ${(total / 3600).toFixed(1)} h`);
});

test('a job past its deadline is cancelled, polled until it ends, and reported as timed out', async () => {
  const { calls, error, visited } = await run({
    StartTask: [{ task: TASK, next_poll_seconds: 15 }],
    GetStatus: [
      status('running', 'EXECUTING'),
      status('running', 'EXECUTING', { timed_out: true }),
      status('running', 'CANCELING'),
      status('canceled', 'CANCELED'),
    ],
    CancelTask: [{ cancel: 'requested', ...status('running', 'CANCELING') }],
    Notify: [{ ...notified, outcome: 'timed_out' }],
  });
  assert.equal(error?.cause?.name, 'TimedOut');
  assert.equal(calls.CancelTask.length, 1);
  assert.deepEqual(calls.CancelTask[0], { job: JOB, task: TASK, cancel_requested: true });
  assert.equal(calls.GetStatus[2].cancel_requested, true, 'polling after the cancel says so (DataSync ends ERROR)');
  assert.equal(calls.Notify[0].timed_out, true);
  assert.equal(calls.Notify[0].status.phase, 'canceled');
  assert.ok(visited.includes('MarkTimedOut'));
});

test('a task that ends before the cancel lands is reported as it ended', async () => {
  const { calls, error } = await run({
    StartTask: [{ task: TASK, next_poll_seconds: 15 }],
    GetStatus: [status('running', 'EXECUTING', { timed_out: true })],
    CancelTask: [{ cancel: 'already_ended', ...status('succeeded', 'SUCCEEDED') }],
    Notify: [notified],
  });
  assert.equal(error, undefined, 'the transfer succeeded, so the execution does');
  assert.equal(calls.GetStatus.length, 1, 'no more polling: the cancel reported the end');
  assert.equal(calls.Notify[0].status.cancel, 'already_ended');
});

test('a job that cannot start is reported with the error and the execution fails', async () => {
  const invalid = lambdaError('InvalidJob', 'invalid job: job.paths[0]: must be relative to the file system root');
  const { calls, error } = await run({ StartTask: [invalid], NotifyCouldNotStart: [notified] });
  assert.equal(error?.cause?.name, 'CouldNotStart');
  assert.equal(calls.StartTask.length, 1, 'InvalidJob is never retried');
  const payload = calls.NotifyCouldNotStart[0];
  assert.equal(payload.error.Error, 'InvalidJob');
  assert.equal(JSON.parse(payload.error.Cause).errorMessage, 'invalid job: job.paths[0]: must be relative to the file system root');
  assert.equal(payload.task, undefined);
});

// A crashed or timed-out function instance, under each name it may reach Step Functions by:
// the Step Functions developer guide ("Handle Lambda service exceptions") says unhandled
// errors, timeouts included, are Lambda.Unknown; Lambda's Invoke API answers the errorType
// Runtime.ExitError (the runtime process exited) or Sandbox.Timedout (past the Timeout), and
// Step Functions names a function's errors by their errorType.
const CRASHES = [
  ['Lambda.Unknown', 'Runtime exited without providing a reason'],
  ['Runtime.ExitError', 'RequestId: 1 Error: Runtime exited with error: signal: killed'],
  ['Sandbox.Timedout', 'RequestId: 1 Error: Task timed out after 30.00 seconds'],
  ['Lambda.ClientExecutionTimeoutException', 'Client execution did not complete before the specified timeout'],
];

test('throttling and a crashed function are retried; exhausted retries still produce a report', async () => {
  const throttled = lambdaError('Throttled', 'throttled');
  for (const [name, message] of CRASHES) {
    const crashed = lambdaError(name, message);
    const ok = await run({
      StartTask: [throttled, crashed, { task: TASK, next_poll_seconds: 15 }],
      GetStatus: [crashed, status('running', 'EXECUTING', { timed_out: true }), status('failed', 'FAILED')],
      CancelTask: [crashed, { cancel: 'already_ended', ...status('failed', 'FAILED') }],
      Notify: [throttled, crashed, notified],
    });
    assert.equal(ok.error?.cause?.name, 'TransferFailed', `${name}: the execution mirrors the failed transfer`);
    assert.equal(ok.calls.StartTask.length, 3, `${name}: StartTask retried`);
    assert.equal(ok.calls.GetStatus.length, 2, `${name}: GetStatus retried`);
    assert.equal(ok.calls.CancelTask.length, 2, `${name}: CancelTask retried`);
    assert.equal(ok.calls.Notify.length, 3, `${name}: a throttled and a crashed publish are retried`);
    assert.ok(ok.calls.StartTask.every((c) => c.execution === 'nightly-export-2026-11-21'), 'same identity: no second task');

    const lost = await run({
      StartTask: [{ task: TASK, next_poll_seconds: 15 }],
      GetStatus: [lambdaError('NotFound', 'gone')],
      NotifyLostTrack: [crashed, notified],
    });
    assert.equal(lost.error?.cause?.name, 'LostTrack');
    assert.equal(lost.calls.NotifyLostTrack.length, 2, `${name}: NotifyLostTrack retried`);
    const never = await run({ StartTask: [lambdaError('InvalidJob', 'bad')], NotifyCouldNotStart: [crashed, notified] });
    assert.equal(never.error?.cause?.name, 'CouldNotStart');
    assert.equal(never.calls.NotifyCouldNotStart.length, 2, `${name}: NotifyCouldNotStart retried`);
  }

  const busy = lambdaError('LimitExceeded', 'ServiceLimitExceeded');
  const maxAttempts = definition.States.StartTask.Retry.find((r) => r.ErrorEquals.includes('LimitExceeded')).MaxAttempts;
  const exhausted = await run({ StartTask: [busy], NotifyCouldNotStart: [notified] });
  assert.equal(exhausted.calls.StartTask.length, maxAttempts + 1);
  assert.equal(exhausted.error?.cause?.name, 'CouldNotStart');
  assert.equal(exhausted.calls.NotifyCouldNotStart[0].error.Error, 'LimitExceeded');
});

test('a task that disappears is reported as lost', async () => {
  const { calls, error } = await run({
    StartTask: [{ task: TASK, next_poll_seconds: 15 }],
    GetStatus: [lambdaError('NotFound', 'data repository task not found')],
    NotifyLostTrack: [notified],
  });
  assert.equal(error?.cause?.name, 'LostTrack');
  assert.equal(calls.GetStatus.length, 1, 'NotFound is not retried');
  assert.deepEqual(calls.NotifyLostTrack[0].task, TASK);
  assert.equal(calls.NotifyLostTrack[0].error.Error, 'NotFound');
});

test('a failed cancel does not stop tracking or reporting', async () => {
  const { calls, error } = await run({
    StartTask: [{ task: TASK, next_poll_seconds: 15 }],
    GetStatus: [status('running', 'EXECUTING', { timed_out: true }), status('canceled', 'CANCELED')],
    CancelTask: [lambdaError('NotFound', 'gone')],
    Notify: [notified],
  });
  assert.equal(error?.cause?.name, 'TimedOut');
  assert.equal(calls.Notify.length, 1);
});

test('a report that cannot be published fails the execution as such', async () => {
  const denied = lambdaError('NotFound', 'topic does not exist');
  const { error } = await run({
    StartTask: [{ task: TASK, next_poll_seconds: 15 }],
    GetStatus: [status('succeeded', 'SUCCEEDED')],
    Notify: [denied],
  });
  assert.equal(error?.cause?.name, 'ReportFailed');
});

test('every Lambda state retries throttling, Lambda service errors, crashes and timeouts', () => {
  const transient = ['Throttled', 'Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException',
    'Lambda.TooManyRequestsException', 'States.Timeout', ...CRASHES.map(([name]) => name)];
  for (const name of LAMBDA_STATES) {
    const retried = new Set(definition.States[name].Retry.flatMap((r) => r.ErrorEquals));
    for (const error of transient) assert.ok(retried.has(error), `${name} retries ${error}`);
    assert.ok(!retried.has('InvalidJob') && !retried.has('States.ALL'), `${name} never retries what cannot succeed`);
  }
});

test('every Lambda state passes only small inputs', () => {
  for (const name of LAMBDA_STATES) {
    const state = definition.States[name];
    assert.ok(state.ResultSelector, `${name} reduces its result with ResultSelector`);
    assert.ok(state.ResultPath, `${name} keeps the rest of the state with ResultPath`);
    assert.deepEqual(Object.keys(state.Parameters), ['FunctionName', 'Payload'], `${name} sends only FunctionName and Payload`);
  }
});
