// The deployed lane-runner definition (statemachine/ferry.asl.json, exactly as template.yaml
// references it) run with aws-local-stepfunctions. Every state runs; the Lambda states are
// simulated by scripted handlers that speak the functions' real contracts (lane, start-task,
// task-status, cancel-task, notify: docs/functions.md), and failures use the functions' real
// error_types, so Retry and Catch are exercised as deployed. The one other Task state,
// StartNext (states:startExecution), gets a scripted handler too. Waits and retry pauses are
// shortened to 0 ms; nothing else is overridden.
//
// Each execution's Step Functions history is counted from the event log the way Step Functions
// counts it (see historyEvents), so the tests can check that a runner following a 30-day task
// hands over to its next execution well before the 25,000-event history limit. Every execution
// runs under Step Functions' payload quota (run-local.mjs's QuotaStateMachine), so a scripted
// answer or a state that AWS would refuse fails here with States.DataLimitExceeded too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { QuotaStateMachine } from './run-local.mjs';

const definitionText = readFileSync(new URL('../ferry.asl.json', import.meta.url), 'utf8');
const SUBSTITUTIONS = ['StartTaskFunctionArn', 'TaskStatusFunctionArn', 'CancelTaskFunctionArn', 'NotifyFunctionArn', 'LaneFunctionArn'];
const functionArn = (name) => `arn:aws:lambda:us-east-1:111122223333:function:${name}`;
const definition = JSON.parse(
  SUBSTITUTIONS.reduce((text, name) => text.replaceAll('${' + name + '}', functionArn(name)), definitionText),
);
const CALLBACK = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
/** What aws-local-stepfunctions runs: it has no callback pattern (no $$.Task.Token, no
 * heartbeat, TimeoutSecondsPath read from the effective input, 60 s by default), so a callback
 * state runs as its scripted handler (which answers what SendTaskSuccess or a timeout would);
 * the definition's own fields are checked in the tests below. */
const runnable = structuredClone(definition);
for (const state of Object.values(runnable.States)) {
  if (state.Resource !== CALLBACK) continue;
  delete state.HeartbeatSecondsPath;
  delete state.TimeoutSecondsPath;
  // Longer than any test, within setTimeout's 32-bit milliseconds.
  state.TimeoutSeconds = 2_000_000;
}
const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:111122223333:stateMachine:ferry';
const executionArn = (name) => `arn:aws:states:us-east-1:111122223333:execution:ferry:${name}`;

const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';
const FUNCTION_OF = {
  Take: 'LaneFunctionArn',
  Started: 'LaneFunctionArn',
  AwaitEnd: 'LaneFunctionArn',
  Finish: 'LaneFunctionArn',
  Release: 'LaneFunctionArn',
  HandOver: 'LaneFunctionArn',
  StartTask: 'StartTaskFunctionArn',
  GetStatus: 'TaskStatusFunctionArn',
  CancelTask: 'CancelTaskFunctionArn',
  CancelAbandoned: 'CancelTaskFunctionArn',
  Notify: 'NotifyFunctionArn',
  NotifyAbandoned: 'NotifyFunctionArn',
  NotifyExpired: 'NotifyFunctionArn',
  NotifyCanceled: 'NotifyFunctionArn',
  NotifyCouldNotStart: 'NotifyFunctionArn',
  NotifyNeverStarted: 'NotifyFunctionArn',
  NotifyLostTrack: 'NotifyFunctionArn',
};
const LANE_ACTION = { Take: 'take', Started: 'started', Finish: 'finish', Release: 'release', HandOver: 'hand_over', AwaitEnd: 'await' };
const TASK_STATES = Object.entries(definition.States).filter(([, s]) => s.Type === 'Task').map(([n]) => n);
const LAMBDA_STATES = TASK_STATES.filter((n) => [LAMBDA_INVOKE, CALLBACK].includes(definition.States[n].Resource));
const WAIT_STATES = Object.entries(definition.States).filter(([, s]) => s.Type === 'Wait').map(([n]) => n);

const LANE = 'fsx:fs-0123456789abcdef0';
const OWNER = 'lane-abc-1';
const INPUT = { lane: LANE, owner: OWNER, generation: 0 };
const SPEC = {
  name: 'nightly-export', kind: 'fsx_export', file_system_id: 'fs-0123456789abcdef0',
  paths: ['exports/a', 'exports/b'], timeout_seconds: 3600,
};
const TASK = { service: 'fsx', file_system_id: 'fs-0123456789abcdef0', task_id: 'task-0123456789abcdef0' };
const TASK2 = { service: 'fsx', file_system_id: 'fs-0123456789abcdef0', task_id: 'task-0fedcba9876543210' };
const DEADLINE = Date.UTC(2026, 10, 21, 2, 0, 0);
const RUN = 'run-01J0000000000000000000001';
const RUNNER = { lane: LANE, owner: OWNER, run: RUN };
const FINAL_PHASES = ['succeeded', 'failed', 'canceled'];

/** A Lambda error as the lambda:invoke integration reports it: Error = errorType, Cause = the
 * function's error document. */
function lambdaError(errorType, errorMessage = errorType) {
  const e = new Error(JSON.stringify({ errorType, errorMessage }));
  e.name = errorType;
  return e;
}
const leaseLost = () => lambdaError('LeaseLost', `lease lost: ${LANE} is held by lane-xyz-9`);

/** A RunSummary as the lane function answers it: a reference and counts, never the spec or the
 * jobs (the task functions read the run from the lane table). */
function claimed(id = RUN, extra = {}) {
  return { id, state: 'claimed', task: null, deadline: DEADLINE, jobs: 3, cancel_requested: false, adoptions: 0, ...extra };
}
const startedRun = (id = RUN, task = TASK) => claimed(id, { state: 'started', task });
/** The lane function's answer to take. */
const taken = (run, extra = {}) => ({ run, adopted: false, abandon: false, expired: [], backlog: 0, ...extra });
const NOTHING = taken(null);
/** start-task's answers. */
const started = (extra = {}) => ({
  task: TASK, busy: false, timed_out: false, canceled: false, idempotency_key: 'ferry-run-01J0000000000000000000001',
  next_poll_seconds: 15, started_at: '2026-11-21T01:00:00Z', ...extra,
});
const busy = (extra = {}) => started({ task: null, busy: true, next_poll_seconds: 30, started_at: null, ...extra });
/** task-status's answer. */
function status(phase, lifecycle, extra = {}) {
  const done = FINAL_PHASES.includes(phase);
  return {
    task: TASK, phase, lifecycle, done, timed_out: false, age_seconds: 60, next_poll_seconds: 15,
    counts: { total: 10, succeeded: done ? 10 : 3, failed: 0 }, timings: { created_at: '2026-11-21T01:00:00Z' },
    waiting: false, cancel_asked: false, await: null, ...extra,
  };
}
/** cancel-task's answer: the task's status, without the lane's fields. */
function cancelAnswer(cancel, phase, lifecycle, extra = {}) {
  const { waiting, cancel_asked, await: _, ...fields } = status(phase, lifecycle, extra);
  return { cancel, ...fields };
}
const reported = (outcome) => ({
  outcome, topic_arn: 'arn:aws:sns:us-east-1:111122223333:ferry-reports', message_ids: ['m1', 'm2'], paths_truncated: false,
});
const finished = (p) => startedRun(p.run);
const released = (again) => ({ again });
const handedOver = (p) => ({ lane: p.lane, owner: `lane-abc-${p.generation + 2}`, generation: p.generation + 1 });
const executionStarted = (p) => ({ ExecutionArn: executionArn(p.Name), StartDate: '2026-11-21T01:00:00Z' });
const always = (step) => () => step;

/**
 * The Step Functions history events an execution's event log stands for: ExecutionStarted and
 * the execution's end (2), each state's Entered and Exited events (a Fail state has Entered
 * only), and for every attempt of a Task state TaskScheduled, TaskStarted and
 * TaskSucceeded/TaskFailed (3).
 */
function historyEvents(events) {
  let count = 2;
  for (const e of events) {
    if (e.type === 'StateEntered') count += 1 + (e.state.type === 'Task' ? 3 : 0);
    else if (e.type === 'StateExited') count += 1;
    else if (e.type === 'StateRetried') count += 3;
  }
  return count;
}

/**
 * Runs the definition with `script`: for each Task state, either a list of answers (or errors)
 * for its successive calls, or a function (payload, n) => answer. An answer may itself be a
 * function of the payload. A call the script does not answer is a test failure. Returns the
 * calls made (payloads per state, and the order of states called), the result or error, the
 * states entered, the events and the history-event count.
 */
const MAX_CALLS = 5000; // per execution; the longest here makes about 1,450
async function run(script, { input = INPUT, name = input.owner } = {}) {
  const calls = Object.fromEntries(TASK_STATES.map((s) => [s, []]));
  const log = [];
  const problems = [];
  const handlers = Object.fromEntries(
    TASK_STATES.map((state) => [
      state,
      async (params) => {
        let payload = params;
        if (state !== 'StartNext') {
          // The lambda:invoke integration's parameters: the function (from the template's
          // DefinitionSubstitutions) and the payload the function receives.
          if (params.FunctionName !== functionArn(FUNCTION_OF[state])) problems.push(`${state} called ${params.FunctionName}`);
          if (Object.keys(params).join() !== 'FunctionName,Payload') problems.push(`${state} sent ${Object.keys(params)}`);
          payload = params.Payload;
          if (LANE_ACTION[state] && payload.action !== LANE_ACTION[state]) problems.push(`${state} sent action ${payload.action}`);
        }
        calls[state].push(payload);
        log.push(state);
        if (log.length > MAX_CALLS) {
          // A loop that never ends (a hand-over that never comes): stop it, and fail the test.
          problems.push(`more than ${MAX_CALLS} calls`);
          execution.abort();
          throw lambdaError('TooManyCalls', `${state} call ${calls[state].length}`);
        }
        const n = calls[state].length;
        const steps = script[state];
        let step = typeof steps === 'function' ? steps(payload, n) : steps?.[n - 1];
        if (typeof step === 'function') step = step(payload, n);
        if (step === undefined) {
          problems.push(`${state} was not expected (call ${n})`);
          throw lambdaError('UnexpectedCall', `${state} call ${n}`);
        }
        if (step instanceof Error) throw step;
        // A callback state's result is the output SendTaskSuccess gave, not an Invoke answer.
        const bare = state === 'StartNext' || definition.States[state].Resource === CALLBACK;
        return bare ? structuredClone(step) : { StatusCode: 200, Payload: structuredClone(step) };
      },
    ]),
  );
  const machine = new QuotaStateMachine(runnable);
  const execution = machine.run(input, {
    overrides: {
      taskResourceLocalHandlers: handlers,
      waitTimeOverrides: Object.fromEntries(WAIT_STATES.map((s) => [s, 0])),
      retryIntervalOverrides: Object.fromEntries(TASK_STATES.map((s) => [s, 0])),
    },
    context: {
      Task: { Token: `token-of-${name}` },
      Execution: { Id: executionArn(name), Name: name },
      StateMachine: { Id: STATE_MACHINE_ARN, Name: 'ferry' },
    },
  });
  const events = [];
  const collect = (async () => {
    for await (const event of execution.eventLogs) events.push(event);
  })();
  let result;
  let error;
  try {
    result = await execution.result;
  } catch (e) {
    error = e;
  }
  await collect;
  assert.deepEqual(problems, [], 'every call was expected and well formed');
  const visited = events.filter((e) => e.type === 'StateEntered').map((e) => e.state.name);
  const retried = events.filter((e) => e.type === 'StateRetried').map((e) => e.state.name);
  return {
    calls, log, result, error, visited, retried, events,
    status: error ? 'FAILED' : 'SUCCEEDED',
    failure: error?.cause?.name,
    history: historyEvents(events),
    polls: calls.GetStatus.length,
  };
}

/** The states entered from the first `from` on (inclusive), up to `count` states. */
function after(visited, from, count = Infinity) {
  const i = visited.indexOf(from);
  assert.ok(i >= 0, `${from} was entered`);
  return visited.slice(i, i + count);
}

/** The state stays small whatever the lane holds: every state's input is under `maxBytes`, and
 * `jobs` (in a RunSummary) is a count wherever it appears, never a list of jobs. */
function assertSmall(events, maxBytes = 4096) {
  for (const e of events) {
    if (e.type !== 'StateEntered') continue;
    const text = JSON.stringify(e.state.input);
    assert.ok(text.length < maxBytes, `${e.state.name}'s input is ${text.length} bytes`);
    JSON.parse(text, (key, value) => {
      if (key === 'jobs') assert.equal(typeof value, 'number', `${e.state.name}: jobs travels as a count only`);
      return value;
    });
  }
}

const POLL = ['GetStatus', 'CountPoll', 'IsDone'];
const TAKE = ['Take', 'CountTake', 'AnyExpired', 'AnyRun'];
const NOTHING_LEFT = [...TAKE, 'Release', 'Again', 'Idle'];

/** A script for one run that succeeds after three polls, then nothing pending. */
function oneRun(over = {}) {
  return {
    Take: [taken(claimed()), NOTHING],
    StartTask: [started()],
    Started: [startedRun()],
    GetStatus: [status('pending', 'PENDING'), status('running', 'EXECUTING'), status('succeeded', 'SUCCEEDED')],
    Notify: [reported('succeeded')],
    Finish: [finished],
    Release: [released(false)],
    ...over,
  };
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

test('one run end to end: take, start, record, poll, report, finish, then release and idle', async () => {
  const r = await run(oneRun());
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(r.visited, [
    'Entry', 'Init', ...TAKE, 'Prepare', 'Adopted', 'StartTask', 'IsBusy', 'Started', 'WaitFirst',
    ...POLL, 'WaitPoll', ...POLL, 'WaitPoll', ...POLL,
    'Notify', 'Finish', 'CountRun', 'Continue', ...NOTHING_LEFT,
  ]);
  assert.deepEqual(r.log, ['Take', 'StartTask', 'Started', 'GetStatus', 'GetStatus', 'GetStatus', 'Notify', 'Finish', 'Take', 'Release']);
  assert.deepEqual(r.calls.Take, [{ action: 'take', lane: LANE, owner: OWNER, generation: 0 }, { action: 'take', lane: LANE, owner: OWNER, generation: 0 }]);
  assert.deepEqual(r.calls.StartTask, [{ runner: RUNNER }]);
  assert.deepEqual(r.calls.Started, [{ action: 'started', lane: LANE, owner: OWNER, run: RUN, task: TASK }]);
  for (const call of r.calls.GetStatus) assert.deepEqual(call, { task: TASK, cancel_requested: false, runner: RUNNER });
  assert.deepEqual(r.calls.Notify, [{
    execution: OWNER, task: TASK, status: status('succeeded', 'SUCCEEDED'), timed_out: false, runner: RUNNER,
  }], 'the report gets the whole last status');
  assert.deepEqual(r.calls.Finish, [{ action: 'finish', lane: LANE, owner: OWNER, run: RUN, outcome: 'succeeded' }]);
  assert.deepEqual(r.calls.Release, [{ action: 'release', lane: LANE, owner: OWNER }]);
  for (const s of ['CancelTask', 'NotifyExpired', 'NotifyCouldNotStart', 'NotifyNeverStarted', 'NotifyLostTrack', 'HandOver', 'StartNext']) {
    assert.equal(r.calls[s].length, 0, `${s} not called`);
  }
  assertSmall(r.events);
  const adopted = r.events.find((e) => e.type === 'StateEntered' && e.state.name === 'Adopted').state.input;
  assert.deepEqual(Object.keys(adopted).sort(), ['abandon', 'flags', 'generation', 'history', 'lane', 'owner', 'run', 'runner']);
  assert.deepEqual(adopted.flags, { cancel_requested: false, timed_out: false });
  assert.ok(r.result.history.events > 0, 'the history budget counts this execution\'s events');
});

test('Finish reports the outcome notify answered, not the task phase', async () => {
  // notify decides the outcome (a cancelled task whose deadline passed is timed_out): the
  // state machine passes it through.
  const r = await run(oneRun({
    GetStatus: [status('failed', 'FAILED')],
    Notify: [reported('failed')],
  }));
  assert.equal(r.calls.Finish[0].outcome, 'failed');
  const odd = await run(oneRun({ GetStatus: [status('succeeded', 'SUCCEEDED')], Notify: [reported('timed_out')] }));
  assert.equal(odd.calls.Finish[0].outcome, 'timed_out');
});

test('the runner loops while runs are pending, and takes again when release says so', async () => {
  const RUN2 = 'run-01J0000000000000000000002';
  const RUN3 = 'run-01J0000000000000000000003';
  const r = await run({
    Take: [taken(claimed(RUN), { backlog: 1 }), taken(claimed(RUN2)), NOTHING, taken(claimed(RUN3)), NOTHING],
    StartTask: [started(), started({ task: TASK2 }), started()],
    Started: [finished, finished, finished],
    GetStatus: [
      status('succeeded', 'SUCCEEDED'),
      status('running', 'EXECUTING', { task: TASK2 }), status('failed', 'FAILED', { task: TASK2 }),
      status('succeeded', 'SUCCEEDED'),
    ],
    Notify: [reported('succeeded'), reported('failed'), reported('succeeded')],
    Finish: [finished, finished, finished],
    Release: [released(true), released(false)],
  }, { input: { ...INPUT, generation: 4 } });
  assert.equal(r.status, 'SUCCEEDED');
  assert.equal(r.visited.at(-1), 'Idle');
  assert.deepEqual(r.log, [
    'Take', 'StartTask', 'Started', 'GetStatus', 'Notify', 'Finish',
    'Take', 'StartTask', 'Started', 'GetStatus', 'GetStatus', 'Notify', 'Finish',
    'Take', 'Release',
    'Take', 'StartTask', 'Started', 'GetStatus', 'Notify', 'Finish',
    'Take', 'Release',
  ]);
  assert.deepEqual(after(r.visited, 'Release', 3), ['Release', 'Again', 'Take'], 'again: take once more');
  assert.deepEqual(r.calls.StartTask.map((c) => c.runner.run), [RUN, RUN2, RUN3]);
  assert.deepEqual(r.calls.GetStatus.map((c) => [c.runner.run, c.task.task_id]), [
    [RUN, TASK.task_id], [RUN2, TASK2.task_id], [RUN2, TASK2.task_id], [RUN3, TASK.task_id],
  ]);
  assert.deepEqual(r.calls.Finish.map((c) => [c.run, c.outcome]), [[RUN, 'succeeded'], [RUN2, 'failed'], [RUN3, 'succeeded']]);
  assert.deepEqual(r.calls.Notify.map((c) => c.runner.run), [RUN, RUN2, RUN3]);
  assert.deepEqual(r.calls.Notify.map((c) => c.execution), [OWNER, OWNER, OWNER], 'the runner execution');
  // Each run starts from a fresh state: nothing of the last run travels on.
  for (const e of r.events.filter((e) => e.type === 'StateEntered' && e.state.name === 'Adopted')) {
    assert.deepEqual(Object.keys(e.state.input).sort(), ['abandon', 'flags', 'generation', 'history', 'lane', 'owner', 'run', 'runner']);
    assert.equal(e.state.input.generation, 4);
  }
  assertSmall(r.events);
  const counted = r.events.filter((e) => e.type === 'StateExited' && e.state.name === 'CountRun').map((e) => e.state.output.history.events);
  assert.equal(counted.length, 3);
  assert.ok(counted[0] < counted[1] && counted[1] < counted[2], 'the history budget grows run after run');
});

test('a busy file system: start-task is asked again after next_poll_seconds with the same run', async () => {
  const r = await run(oneRun({
    StartTask: [busy({ next_poll_seconds: 120 }), busy({ next_poll_seconds: 240 }), started()],
    GetStatus: [status('succeeded', 'SUCCEEDED')],
  }));
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(after(r.visited, 'StartTask', 10), [
    'StartTask', 'IsBusy', 'WaitBusy', 'CountBusy', 'StartTask', 'IsBusy', 'WaitBusy', 'CountBusy', 'StartTask', 'IsBusy',
  ]);
  assert.equal(r.visited[r.visited.lastIndexOf('IsBusy') + 1], 'Started');
  assert.equal(r.calls.StartTask.length, 3);
  for (const call of r.calls.StartTask) {
    assert.deepEqual(call, { runner: RUNNER }, 'same run, same idempotency key');
  }
  assert.deepEqual(r.retried, [], 'busy is an answer, not an error: no retries');
  assert.deepEqual(r.calls.Started, [{ action: 'started', lane: LANE, owner: OWNER, run: RUN, task: TASK }]);
  assert.equal(r.calls.Notify.length, 1);
  assert.equal(r.calls.Finish.length, 1);
  const waits = r.events.filter((e) => e.type === 'StateEntered' && e.state.name === 'WaitBusy').map((e) => e.state.input.started.next_poll_seconds);
  assert.deepEqual(waits, [120, 240], 'each wait is what start-task said');
});

test('busy until every deadline passed: the run is reported timed out without starting, and the runner goes on', async () => {
  const RUN2 = 'run-01J0000000000000000000002';
  const r = await run({
    Take: [taken(claimed()), taken(claimed(RUN2)), NOTHING],
    StartTask: [busy(), busy({ timed_out: true }), started()],
    NotifyNeverStarted: [reported('timed_out')],
    Started: [finished],
    GetStatus: [status('succeeded', 'SUCCEEDED')],
    Notify: [reported('succeeded')],
    Finish: [finished, finished],
    Release: [released(false)],
  });
  assert.equal(r.status, 'SUCCEEDED');
  assert.equal(r.visited.at(-1), 'Idle');
  assert.deepEqual(after(r.visited, 'WaitBusy', 10), [
    'WaitBusy', 'CountBusy', 'StartTask', 'IsBusy', 'NeverStarted', 'NotifyNeverStarted', 'Finish', 'CountRun', 'Continue', 'Take',
  ]);
  const [never] = r.calls.NotifyNeverStarted;
  assert.deepEqual(Object.keys(never).sort(), ['error', 'execution', 'runner', 'timed_out'], 'by reference: no spec');
  assert.equal(never.execution, OWNER, 'reports name the runner execution');
  assert.equal(never.timed_out, true);
  assert.deepEqual(never.runner, RUNNER);
  assert.equal(never.error.Error, 'TimedOut');
  assert.ok(never.error.Cause.length > 0);
  assert.deepEqual(r.calls.Finish[0], { action: 'finish', lane: LANE, owner: OWNER, run: RUN, outcome: 'timed_out' });
  assert.deepEqual(r.calls.Started.map((c) => c.run), [RUN2], 'the first run never started');
  assert.deepEqual(r.calls.StartTask.map((c) => c.runner.run), [RUN, RUN, RUN2]);
  assert.deepEqual(r.calls.Finish.map((c) => [c.run, c.outcome]), [[RUN, 'timed_out'], [RUN2, 'succeeded']]);
});

test('an adopted run whose task started is followed: no second start, no second record', async () => {
  const r = await run(oneRun({
    Take: [taken(startedRun(RUN, TASK2), { adopted: true }), NOTHING],
    StartTask: [],
    Started: [],
    GetStatus: [status('running', 'EXECUTING', { task: TASK2 }), status('succeeded', 'SUCCEEDED', { task: TASK2 })],
  }));
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(after(r.visited, 'Prepare', 5), ['Prepare', 'Adopted', 'Follow', 'GetStatus', 'CountPoll']);
  assert.equal(r.calls.StartTask.length, 0);
  assert.equal(r.calls.Started.length, 0);
  assert.deepEqual(r.calls.GetStatus[0], { task: TASK2, cancel_requested: false, runner: RUNNER });
  assert.deepEqual(r.calls.Notify[0].task, TASK2);
  assert.deepEqual(r.calls.Finish, [{ action: 'finish', lane: LANE, owner: OWNER, run: RUN, outcome: 'succeeded' }]);

  // Adopted before its task started: started again under the same run id (same token).
  const claimedAgain = await run(oneRun({
    Take: [taken(claimed(), { adopted: true }), NOTHING],
    GetStatus: [status('succeeded', 'SUCCEEDED')],
  }));
  assert.deepEqual(claimedAgain.calls.StartTask, [{ runner: RUNNER }]);
  assert.equal(claimedAgain.calls.Started.length, 1);
  assert.ok(!claimedAgain.visited.includes('Follow'));
});

test('a runner that replaces a stopped one waits settle_seconds first, then adopts as any runner', async () => {
  const input = { ...INPUT, settle_seconds: 40 };
  const r = await run(oneRun({
    Take: [taken(startedRun(RUN, TASK2), { adopted: true }), NOTHING],
    StartTask: [],
    Started: [],
    GetStatus: [status('succeeded', 'SUCCEEDED', { task: TASK2 })],
  }), { input });
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(r.visited.slice(0, 3), ['Entry', 'Settle', 'Init']);
  const settle = r.events.find((e) => e.type === 'StateEntered' && e.state.name === 'Settle');
  assert.equal(settle.state.input.settle_seconds, 40);
  assert.equal(definition.States.Settle.SecondsPath, '$.settle_seconds');
  assert.deepEqual(r.calls.Take[0], { action: 'take', lane: LANE, owner: OWNER, generation: 0 }, 'settle_seconds goes no further');
  // A runner without it starts at once.
  const plain = await run(oneRun());
  assert.ok(!plain.visited.includes('Settle'));
});

test('jobs that expired in the lane are reported once, and the run proceeds; a failed report does not stop the runner', async () => {
  // By reference: the ids of the jobs the take ended; notify reads each from the lane table.
  const expired = [`job-${'1'.repeat(56)}`, `job-${'2'.repeat(56)}`];
  const script = (notifyExpired) => oneRun({
    Take: [taken(claimed(), { expired, backlog: 4 }), NOTHING],
    GetStatus: [status('succeeded', 'SUCCEEDED')],
    NotifyExpired: notifyExpired,
  });
  const r = await run(script([reported('timed_out')]));
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(r.calls.NotifyExpired, [{ expired: { lane: LANE, jobs: expired } }], 'only the expired jobs, by reference');
  assert.deepEqual(after(r.visited, 'AnyExpired', 4), ['AnyExpired', 'NotifyExpired', 'AnyRun', 'Prepare']);
  assert.deepEqual(r.log, ['Take', 'NotifyExpired', 'StartTask', 'Started', 'GetStatus', 'Notify', 'Finish', 'Take', 'Release']);
  assert.equal(r.calls.NotifyExpired.length, 1, 'the second take had none');
  const adopted = r.events.find((e) => e.type === 'StateEntered' && e.state.name === 'Adopted').state.input;
  assert.equal(adopted.taken, undefined, 'the expired list does not travel with the run');

  const throttled = await run(script(always(lambdaError('Throttled', 'Rate exceeded'))));
  assert.equal(throttled.status, 'SUCCEEDED');
  const attempts = definition.States.NotifyExpired.Retry.find((x) => x.ErrorEquals.includes('Throttled')).MaxAttempts + 1;
  assert.equal(throttled.calls.NotifyExpired.length, attempts, 'retried until its retries ran out');
  assert.equal(throttled.calls.StartTask.length, 1, 'then the run goes on');
  assert.equal(throttled.calls.Finish.length, 1);
  assert.equal(throttled.visited.at(-1), 'Idle');

  const denied = await run(script([lambdaError('NotFound', 'topic does not exist')]));
  assert.equal(denied.status, 'SUCCEEDED');
  assert.equal(denied.calls.NotifyExpired.length, 1, 'NotFound is not retried');
  assert.equal(denied.calls.Finish.length, 1);

  // Expired jobs and nothing to run: reported, then the lane is released.
  const only = await run({ Take: [taken(null, { expired })], NotifyExpired: [reported('timed_out')], Release: [released(false)] });
  assert.deepEqual(only.log, ['Take', 'NotifyExpired', 'Release']);
  assert.equal(only.visited.at(-1), 'Idle');
});

test('an execution a cancel started reports the job cancelled while pending and takes no lease', async () => {
  // By reference: the lane and the job; notify reads who cancelled it and why from the table.
  const job = { id: 'job-' + 'a'.repeat(56) };
  const input = { canceled: { lane: LANE, jobs: [job.id] } };
  const name = `cancel-${job.id}`;
  const r = await run({ NotifyCanceled: [reported('canceled')] }, { input, name });
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(r.visited, ['Entry', 'NotifyCanceled', 'CanceledReported']);
  assert.deepEqual(r.calls.NotifyCanceled, [{ expired: input.canceled }], 'notify gets the job as it reports ended-pending jobs');
  assert.deepEqual(r.log, ['NotifyCanceled'], 'no lane step: no lease taken, renewed or released');

  const throttled = await run({ NotifyCanceled: [lambdaError('Throttled', 'Rate exceeded'), reported('canceled')] }, { input, name });
  assert.equal(throttled.status, 'SUCCEEDED');
  assert.equal(throttled.calls.NotifyCanceled.length, 2, 'retried');

  // A report that cannot be published fails the execution: the failed-executions alarm says so.
  const denied = await run({ NotifyCanceled: [lambdaError('NotFound', 'topic does not exist')] }, { input, name });
  assert.equal(denied.status, 'FAILED');
  assert.deepEqual(denied.log, ['NotifyCanceled']);
});

// ---------------------------------------------------------------------------------------------
// DataSync runs wait for their end event (AwaitEnd, a callback state)
// ---------------------------------------------------------------------------------------------

const DS_TASK = { service: 'datasync', task_execution_arn: 'arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0123456789abcdef0' };
const AWAIT = { heartbeat_seconds: 900, timeout_seconds: 21_000 };
const dsStatus = (phase, lifecycle, extra = {}) => status(phase, lifecycle, { task: DS_TASK, ...extra });
const woken = (by) => () => ({ woken_by: by });
const timedOut = (name) => () => Object.assign(new Error(JSON.stringify({ errorType: name, errorMessage: 'no news' })), { name });
/** A DataSync run: started, checked once, then waits (AwaitEnd) as `awaits` script it. */
function dataSyncRun(statuses, awaits, over = {}) {
  return oneRun({
    StartTask: [started({ task: DS_TASK })],
    Started: [startedRun(RUN, DS_TASK)],
    GetStatus: statuses,
    AwaitEnd: awaits,
    ...over,
  });
}
/** Transitions from the task's start to its report (the cost of following it). */
const following = (visited) => visited.slice(visited.indexOf('Started') + 1, visited.indexOf('Notify')).length;

test('a DataSync run that goes on waits for its end event, then checks the execution once and reports', async () => {
  const r = await run(dataSyncRun(
    [dsStatus('running', 'TRANSFERRING', { await: AWAIT }), dsStatus('succeeded', 'SUCCESS')],
    [woken('a DataSync event: the execution is SUCCESS')],
  ));
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(after(r.visited, 'Started', 11), [
    'Started', 'WaitFirst', ...POLL, 'AwaitEnd', 'CountAwait', ...POLL, 'Notify',
  ]);
  assert.equal(r.calls.AwaitEnd.length, 1);
  const [payload] = r.calls.AwaitEnd;
  assert.deepEqual(payload, {
    action: 'await', lane: LANE, owner: OWNER, run: RUN, task: DS_TASK, token: `token-of-${OWNER}`,
    heartbeat_seconds: 900, timeout_seconds: 21_000,
  }, 'the lane function gets the token and the wait the status check asked for');
  assert.ok(following(r.visited) <= 12, `${following(r.visited)} transitions to follow the run`);
  const checked = r.events.filter((e) => e.type === 'StateEntered' && e.state.name === 'GetStatus');
  assert.ok(!('woken' in checked[1].state.input), 'the wake is a reason to look, not the answer: dropped');
});

test('a wait with no news times out into a status check, and waits again while the run goes on', async () => {
  const going = dsStatus('running', 'TRANSFERRING', { await: AWAIT });
  const r = await run(dataSyncRun(
    [going, going, going, dsStatus('failed', 'ERROR')],
    [timedOut('States.HeartbeatTimeout'), timedOut('States.HeartbeatTimeout'), timedOut('States.Timeout')],
  ));
  assert.equal(r.status, 'SUCCEEDED');
  assert.equal(r.calls.AwaitEnd.length, 3);
  assert.equal(r.calls.GetStatus.length, 4, 'each timeout is one status check');
  assert.deepEqual(r.log.slice(-3), ['Finish', 'Take', 'Release']);
  // Counted as Step Functions counts it: CountPoll and CountAwait together match the history.
  const counted = r.events.filter((e) => e.type === 'StateExited' && e.state.name === 'Notify')[0];
  assert.ok(counted, 'reported');
});

test('a runner whose wait was taken over stops; a wait that cannot be set up falls back to polling', async () => {
  const lost = await run(dataSyncRun([dsStatus('running', 'TRANSFERRING', { await: AWAIT })], [leaseLost()], {
    Notify: [], Finish: [], Release: [], Take: [taken(claimed())],
  }));
  assert.equal(lost.status, 'SUCCEEDED');
  assert.equal(lost.visited.at(-1), 'LaneLost');

  const broken = await run(dataSyncRun(
    [dsStatus('running', 'TRANSFERRING', { await: AWAIT }), dsStatus('succeeded', 'SUCCESS')],
    always(lambdaError('AwsService', 'UpdateItem: the lane table is unreachable')),
  ));
  assert.equal(broken.status, 'SUCCEEDED');
  assert.deepEqual(after(broken.visited, 'AwaitEnd', 3), ['AwaitEnd', 'CountAwait', 'GetStatus']);
});

test('without await (FSx, events off, or a cancel under way) the runner polls as before', async () => {
  const r = await run(oneRun());
  assert.ok(!r.visited.includes('AwaitEnd'));
});

test('AwaitEnd is the callback pattern with the status check\'s heartbeat and deadline', () => {
  const state = definition.States.AwaitEnd;
  assert.equal(state.Resource, CALLBACK);
  assert.equal(state.Parameters.Payload['token.$'], '$$.Task.Token');
  assert.equal(state.HeartbeatSecondsPath, '$.status.await.heartbeat_seconds');
  assert.equal(state.TimeoutSecondsPath, '$.status.await.timeout_seconds');
  assert.equal(state.Parameters.Payload['heartbeat_seconds.$'], state.HeartbeatSecondsPath, 'the function knows the heartbeat it renews the lease for');
  assert.equal(definition.States.GetStatus.ResultSelector['await.$'], '$.Payload.await');
  const catches = state.Catch.map((c) => [c.ErrorEquals.join(), c.Next]);
  assert.deepEqual(catches, [['LeaseLost', 'LaneLost'], ['States.ALL', 'CountAwait']]);
});

test('a run past its deadline is cancelled once, polled until it ends, and reported timed out', async () => {
  const r = await run(oneRun({
    GetStatus: [
      status('running', 'EXECUTING'),
      status('running', 'EXECUTING', { timed_out: true }),
      status('running', 'CANCELING', { timed_out: true, next_poll_seconds: 5 }),
      status('canceled', 'CANCELED', { timed_out: true }),
    ],
    CancelTask: [cancelAnswer('requested', 'running', 'CANCELING', { timed_out: true })],
    Notify: [reported('timed_out')],
  }));
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(after(r.visited, 'MarkTimedOut', 6), ['MarkTimedOut', 'CancelTask', 'IsDone', 'WaitPoll', 'GetStatus', 'CountPoll']);
  assert.equal(r.visited.filter((s) => s === 'MarkTimedOut').length, 1);
  assert.deepEqual(r.calls.CancelTask, [{ task: TASK, cancel_requested: true, runner: RUNNER }]);
  assert.deepEqual(r.calls.GetStatus.map((c) => c.cancel_requested), [false, false, true, true], 'polls after the cancel say so');
  assert.equal(r.calls.Notify[0].timed_out, true);
  assert.equal(r.calls.Notify[0].status.phase, 'canceled');
  assert.deepEqual(r.calls.Finish[0], { action: 'finish', lane: LANE, owner: OWNER, run: RUN, outcome: 'timed_out' });

  // The task ended before the cancel landed: no more polling, reported as it ended.
  const ended = await run(oneRun({
    GetStatus: [status('running', 'EXECUTING', { timed_out: true })],
    CancelTask: [cancelAnswer('already_ended', 'succeeded', 'SUCCEEDED')],
  }));
  assert.equal(ended.polls, 1);
  assert.equal(ended.calls.Notify[0].status.cancel, 'already_ended');
  assert.equal(ended.calls.Notify[0].status.phase, 'succeeded');
  assert.equal(ended.calls.Notify[0].timed_out, true);

  // A cancel that fails does not stop tracking or reporting, and is not asked again.
  const failed = await run(oneRun({
    GetStatus: [status('running', 'EXECUTING', { timed_out: true }), status('running', 'EXECUTING', { timed_out: true }), status('failed', 'FAILED')],
    CancelTask: [lambdaError('NotFound', 'gone')],
    Notify: [reported('failed')],
  }));
  assert.equal(failed.status, 'SUCCEEDED');
  assert.equal(failed.calls.CancelTask.length, 1);
  assert.equal(failed.polls, 3);
  assert.equal(failed.calls.Notify.length, 1);
  assert.equal(failed.calls.Finish[0].outcome, 'failed');
});

test('a cancel asked by a person cancels the task once and reports it cancelled', async () => {
  const asked = { cancel_asked: true };
  const r = await run(oneRun({
    GetStatus: [
      status('running', 'EXECUTING'),
      status('running', 'EXECUTING', asked),
      status('running', 'CANCELING', asked),
      status('running', 'CANCELING', asked),
      status('canceled', 'CANCELED', asked),
    ],
    CancelTask: [cancelAnswer('requested', 'running', 'CANCELING')],
    Notify: [reported('canceled')],
  }));
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(after(r.visited, 'MarkCanceled', 3), ['MarkCanceled', 'CancelTask', 'IsDone']);
  assert.equal(r.calls.CancelTask.length, 1, 'once, although later statuses still say cancel_asked');
  assert.deepEqual(r.calls.CancelTask[0], { task: TASK, cancel_requested: true, runner: RUNNER });
  assert.deepEqual(r.calls.GetStatus.map((c) => c.cancel_requested), [false, false, true, true, true]);
  assert.equal(r.calls.Notify[0].timed_out, false, 'cancelled, not timed out');
  assert.equal(r.calls.Notify[0].status.phase, 'canceled');
  assert.equal(r.calls.Finish[0].outcome, 'canceled');
  assert.ok(!r.visited.includes('MarkTimedOut'));
});

test('a lost lease ends the execution quietly, wherever it is noticed', async () => {
  // A script that visits every state that renews the lease: a run cancelled at its deadline.
  const full = () => oneRun({
    GetStatus: [status('running', 'EXECUTING', { timed_out: true }), status('canceled', 'CANCELED')],
    CancelTask: [cancelAnswer('requested', 'running', 'CANCELING')],
    Notify: [reported('timed_out')],
  });
  const baseline = await run(full());
  assert.deepEqual(baseline.log, ['Take', 'StartTask', 'Started', 'GetStatus', 'CancelTask', 'GetStatus', 'Notify', 'Finish', 'Take', 'Release']);
  assert.equal(baseline.visited.at(-1), 'Idle');
  for (const state of ['Take', 'StartTask', 'Started', 'GetStatus', 'CancelTask', 'Notify', 'Finish', 'Release']) {
    const script = full();
    script[state] = [leaseLost()];
    const r = await run(script);
    assert.equal(r.status, 'SUCCEEDED', `${state}: the execution succeeds`);
    assert.equal(r.visited.at(-1), 'LaneLost', `${state}: ends in LaneLost`);
    assert.equal(r.calls[state].length, 1, `${state}: LeaseLost is not retried`);
    assert.equal(r.log.at(-1), state, `${state}: nothing is called after it`);
    assert.equal(r.log.length, baseline.log.indexOf(state) + 1, `${state}: nothing else happened`);
  }
});

test('LeaseLost from Take, GetStatus and Finish each end in LaneLost with no further calls', async () => {
  const fromTake = await run({ Take: [leaseLost()] });
  assert.equal(fromTake.status, 'SUCCEEDED');
  assert.deepEqual(fromTake.visited, ['Entry', 'Init', 'Take', 'LaneLost']);
  assert.deepEqual(fromTake.log, ['Take']);

  const fromStatus = await run(oneRun({ GetStatus: [status('running', 'EXECUTING'), leaseLost()] }));
  assert.equal(fromStatus.status, 'SUCCEEDED');
  assert.deepEqual(fromStatus.log, ['Take', 'StartTask', 'Started', 'GetStatus', 'GetStatus']);
  assert.deepEqual(fromStatus.visited.slice(-2), ['GetStatus', 'LaneLost']);

  const fromFinish = await run(oneRun({ GetStatus: [status('succeeded', 'SUCCEEDED')], Finish: [leaseLost()] }));
  assert.equal(fromFinish.status, 'SUCCEEDED');
  assert.deepEqual(fromFinish.log, ['Take', 'StartTask', 'Started', 'GetStatus', 'Notify', 'Finish']);
  assert.deepEqual(fromFinish.visited.slice(-2), ['Finish', 'LaneLost']);
});

test('a run that cannot start is reported, finished as notify said, and the runner goes on', async () => {
  const RUN2 = 'run-01J0000000000000000000002';
  const message = 'invalid job: job.paths[0]: must be relative to the file system root';
  const r = await run({
    Take: [taken(claimed()), taken(claimed(RUN2)), NOTHING],
    StartTask: [lambdaError('InvalidJob', message), started()],
    NotifyCouldNotStart: [reported('could_not_start')],
    Started: [finished],
    GetStatus: [status('succeeded', 'SUCCEEDED')],
    Notify: [reported('succeeded')],
    Finish: [finished, finished],
    Release: [released(false)],
  });
  assert.equal(r.status, 'SUCCEEDED');
  assert.equal(r.visited.at(-1), 'Idle');
  assert.deepEqual(after(r.visited, 'StartTask', 6), ['StartTask', 'NotifyCouldNotStart', 'Finish', 'CountRun', 'Continue', 'Take']);
  assert.deepEqual(r.calls.StartTask.map((c) => c.runner.run), [RUN, RUN2], 'InvalidJob is never retried');
  const [payload] = r.calls.NotifyCouldNotStart;
  assert.deepEqual(Object.keys(payload).sort(), ['error', 'execution', 'runner'], 'by reference: no spec');
  assert.equal(payload.execution, OWNER, 'reports name the runner execution');
  assert.deepEqual(payload.runner, RUNNER);
  assert.equal(payload.error.Error, 'InvalidJob');
  assert.equal(JSON.parse(payload.error.Cause).errorMessage, message);
  assert.deepEqual(r.calls.Finish[0], { action: 'finish', lane: LANE, owner: OWNER, run: RUN, outcome: 'could_not_start' });
  assert.deepEqual(r.calls.Started.map((c) => c.run), [RUN2]);

  // FSx ServiceLimitExceeded: retried slowly, then the run could not start.
  const limit = definition.States.StartTask.Retry.find((x) => x.ErrorEquals.includes('LimitExceeded')).MaxAttempts;
  const exhausted = await run({
    Take: [taken(claimed()), NOTHING],
    StartTask: always(lambdaError('LimitExceeded', 'ServiceLimitExceeded')),
    NotifyCouldNotStart: [reported('could_not_start')],
    Finish: [finished],
    Release: [released(false)],
  });
  assert.equal(exhausted.calls.StartTask.length, limit + 1);
  assert.equal(exhausted.calls.NotifyCouldNotStart[0].error.Error, 'LimitExceeded');
  assert.equal(exhausted.calls.Finish[0].outcome, 'could_not_start');
  assert.equal(exhausted.visited.at(-1), 'Idle');
});

test('a run cancelled before its task started is not started: reported canceled, finished canceled', async () => {
  const r = await run(oneRun({
    StartTask: [started({ task: null, canceled: true })],
    NotifyCouldNotStart: [reported('canceled')],
    Started: [], GetStatus: [], Notify: [],
  }));
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(after(r.visited, 'StartTask', 5), ['StartTask', 'IsBusy', 'CanceledBeforeStart', 'NotifyCouldNotStart', 'Finish']);
  const [payload] = r.calls.NotifyCouldNotStart;
  assert.equal(payload.error.Error, 'Canceled', 'notify reports it canceled, naming who asked');
  assert.deepEqual(payload.runner, RUNNER);
  assert.deepEqual(r.calls.Finish[0], { action: 'finish', lane: LANE, owner: OWNER, run: RUN, outcome: 'canceled' });
});

test('a run adopted past the limit is abandoned: its task cancelled, reported failed, finished, and the lane goes on', async () => {
  const RUN2 = 'run-01J0000000000000000000002';
  const r = await run({
    Take: [taken(startedRun(RUN, TASK2), { adopted: true, abandon: true }), taken(claimed(RUN2)), NOTHING],
    CancelAbandoned: [cancelAnswer('requested', 'running', 'CANCELING')],
    NotifyAbandoned: [reported('failed')],
    StartTask: [started()],
    Started: [finished],
    GetStatus: [status('succeeded', 'SUCCEEDED')],
    Notify: [reported('succeeded')],
    Finish: [finished, finished],
    Release: [released(false)],
  });
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(after(r.visited, 'Adopted', 6), ['Adopted', 'Abandon', 'CancelAbandoned', 'NotifyAbandoned', 'Finish', 'CountRun']);
  assert.deepEqual(r.calls.CancelAbandoned, [{ task: TASK2, cancel_requested: true, runner: RUNNER }]);
  const [payload] = r.calls.NotifyAbandoned;
  assert.equal(payload.error.Error, 'RunAbandoned');
  assert.match(payload.error.Cause, /^Ferry abandoned the run: 0 runners in a row stopped/);
  assert.deepEqual(payload.task, TASK2);
  assert.deepEqual(r.calls.Finish.map((c) => [c.run, c.outcome]), [[RUN, 'failed'], [RUN2, 'succeeded']]);

  // Never started: nothing to cancel. A cancel or a report that fails does not keep the lane.
  const claimedOnly = await run({
    Take: [taken(claimed(RUN, { adoptions: 4 }), { adopted: true, abandon: true }), NOTHING],
    NotifyAbandoned: always(lambdaError('Throttled', 'Rate exceeded')),
    Finish: [finished],
    Release: [released(false)],
  });
  assert.equal(claimedOnly.status, 'SUCCEEDED');
  assert.equal(claimedOnly.calls.CancelAbandoned.length, 0);
  assert.match(claimedOnly.calls.NotifyAbandoned[0].error.Cause, /^Ferry abandoned the run: 4 runners/);
  assert.deepEqual(claimedOnly.calls.Finish.map((c) => c.outcome), ['failed']);
  assert.ok(claimedOnly.visited.includes('AbandonedUnreported'));
  const cancelFails = await run({
    Take: [taken(startedRun(), { adopted: true, abandon: true }), NOTHING],
    CancelAbandoned: always(lambdaError('AwsService', 'fsx: 500')),
    NotifyAbandoned: [reported('failed')],
    Finish: [finished],
    Release: [released(false)],
  });
  assert.equal(cancelFails.status, 'SUCCEEDED');
  assert.deepEqual(cancelFails.calls.Finish.map((c) => c.outcome), ['failed']);
});

test('a report that cannot be published does not stop the run from finishing', async () => {
  const throttled = always(lambdaError('Throttled', 'Rate exceeded'));
  const attempts = (state) => definition.States[state].Retry.find((x) => x.ErrorEquals.includes('Throttled')).MaxAttempts + 1;

  const r = await run(oneRun({ GetStatus: [status('failed', 'FAILED')], Notify: throttled }));
  assert.equal(r.status, 'SUCCEEDED', 'the execution does not fail');
  assert.equal(r.calls.Notify.length, attempts('Notify'));
  assert.ok(r.calls.Notify.every((c) => JSON.stringify(c) === JSON.stringify(r.calls.Notify[0])), 'each retry publishes the same report');
  const unreported = after(r.visited, 'Notify');
  assert.ok(unreported.indexOf('OutcomeUnreported') < unreported.indexOf('Finish'), 'OutcomeUnreported, then Finish');
  assert.ok(unreported.indexOf('OutcomeUnreported') > 0);
  assert.deepEqual(r.calls.Finish[0], { action: 'finish', lane: LANE, owner: OWNER, run: RUN, outcome: 'failed' }, 'the phase');
  assert.equal(r.visited.at(-1), 'Idle');

  const couldNotStart = await run(oneRun({
    StartTask: [lambdaError('InvalidJob', 'bad')], NotifyCouldNotStart: throttled, Started: [], GetStatus: [], Notify: [],
  }));
  assert.equal(couldNotStart.calls.NotifyCouldNotStart.length, attempts('NotifyCouldNotStart'));
  assert.equal(couldNotStart.calls.Finish[0].outcome, 'could_not_start');
  assert.equal(couldNotStart.visited.at(-1), 'Idle');

  const neverStarted = await run(oneRun({
    StartTask: [busy({ timed_out: true })], NotifyNeverStarted: throttled, Started: [], GetStatus: [], Notify: [],
  }));
  assert.equal(neverStarted.calls.NotifyNeverStarted.length, attempts('NotifyNeverStarted'));
  assert.equal(neverStarted.calls.Finish[0].outcome, 'timed_out');

  const lostTrack = await run(oneRun({ GetStatus: [lambdaError('NotFound', 'gone')], NotifyLostTrack: throttled, Notify: [] }));
  assert.equal(lostTrack.calls.NotifyLostTrack.length, attempts('NotifyLostTrack'));
  assert.equal(lostTrack.calls.Finish[0].outcome, 'failed');
});

test('a timed-out run whose report cannot be published is finished timed_out', async () => {
  const r = await run(oneRun({
    GetStatus: [status('running', 'EXECUTING', { timed_out: true }), status('canceled', 'CANCELED', { timed_out: true })],
    CancelTask: [cancelAnswer('requested', 'running', 'CANCELING', { timed_out: true })],
    Notify: always(lambdaError('Throttled', 'Rate exceeded')),
  }));
  assert.equal(r.status, 'SUCCEEDED');
  assert.equal(r.calls.Finish[0].outcome, 'timed_out', 'what notify would have answered (canceled + timed_out)');
});

test('a task that can no longer be described is reported as lost track, then finished', async () => {
  const r = await run(oneRun({
    GetStatus: [status('running', 'EXECUTING'), lambdaError('NotFound', 'data repository task not found')],
    NotifyLostTrack: [reported('failed')],
    Notify: [],
  }));
  assert.equal(r.status, 'SUCCEEDED');
  assert.equal(r.polls, 2, 'NotFound is not retried');
  assert.deepEqual(after(r.visited, 'NotifyLostTrack', 3), ['NotifyLostTrack', 'Finish', 'CountRun']);
  const [payload] = r.calls.NotifyLostTrack;
  assert.deepEqual(Object.keys(payload).sort(), ['error', 'execution', 'runner', 'task']);
  assert.deepEqual(payload.task, TASK);
  assert.equal(payload.execution, OWNER, 'reports name the runner execution');
  assert.deepEqual(payload.runner, RUNNER);
  assert.equal(payload.error.Error, 'NotFound');
  assert.deepEqual(r.calls.Finish[0], { action: 'finish', lane: LANE, owner: OWNER, run: RUN, outcome: 'failed' });
  assert.equal(r.visited.at(-1), 'Idle');
});

test('a lane table that stays unreachable fails the runner', async () => {
  const attempts = definition.States.Take.Retry.find((x) => x.ErrorEquals.includes('AwsService')).MaxAttempts + 1;
  const r = await run({ Take: always(lambdaError('AwsService', 'dynamodb: service error')) });
  assert.equal(r.status, 'FAILED');
  assert.equal(r.failure, 'RunnerFailed');
  assert.equal(r.calls.Take.length, attempts);
  assert.deepEqual(r.log, Array(attempts).fill('Take'), 'nothing else is called');
  assert.deepEqual(r.visited, ['Entry', 'Init', 'Take', 'RunnerFailed']);

  // Finish: the run stays in flight for the runner the sweep starts.
  const finish = await run(oneRun({ GetStatus: [status('succeeded', 'SUCCEEDED')], Finish: always(lambdaError('AwsService', '5xx')) }));
  assert.equal(finish.failure, 'RunnerFailed');
  assert.equal(finish.calls.Finish.length, definition.States.Finish.Retry.find((x) => x.ErrorEquals.includes('AwsService')).MaxAttempts + 1);
  assert.equal(finish.calls.Release.length, 0);
});

// A crashed or timed-out function instance, under each name it may reach Step Functions by,
// and the other transient errors every Lambda state retries.
const TRANSIENT = [
  'Throttled', 'Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException', 'Lambda.Unknown', 'Lambda.ClientExecutionTimeoutException',
  'Runtime.ExitError', 'Sandbox.Timedout', 'States.Timeout',
];

test('throttling, Lambda errors and crashed functions are retried with the same payload', async () => {
  const flaky = (error, answers) => [error, ...answers];
  for (const name of TRANSIENT) {
    const e = lambdaError(name, `${name} happened`);
    const r = await run({
      Take: flaky(e, [taken(claimed()), NOTHING]),
      StartTask: flaky(e, [started()]),
      Started: flaky(e, [finished]),
      GetStatus: flaky(e, [status('running', 'EXECUTING', { timed_out: true }), status('canceled', 'CANCELED')]),
      CancelTask: flaky(e, [cancelAnswer('requested', 'running', 'CANCELING')]),
      Notify: flaky(e, [reported('timed_out')]),
      Finish: flaky(e, [finished]),
      Release: flaky(e, [released(false)]),
    });
    assert.equal(r.status, 'SUCCEEDED', name);
    assert.equal(r.visited.at(-1), 'Idle', name);
    for (const state of ['Take', 'StartTask', 'Started', 'GetStatus', 'CancelTask', 'Notify', 'Finish', 'Release']) {
      assert.deepEqual(r.calls[state][1], r.calls[state][0], `${name}: ${state} retried with the same payload`);
    }
    assert.deepEqual(r.calls.Take.length, 3, `${name}: Take retried once`);
    assert.equal(r.calls.StartTask.length, 2);
    assert.equal(r.calls.CancelTask.length, 2);
    assert.equal(r.calls.Finish[1].outcome, 'timed_out');
    assert.equal(r.retried.length, 8, `${name}: one retry per state`);
  }
  // Lambda.Unknown, then success: the lane step is repeated.
  const lane = await run(oneRun({ Take: [lambdaError('Lambda.Unknown'), taken(claimed()), NOTHING], GetStatus: [status('succeeded', 'SUCCEEDED')] }));
  assert.deepEqual(lane.log.slice(0, 3), ['Take', 'Take', 'StartTask']);
  assert.deepEqual(lane.retried, ['Take']);
});

// ---------------------------------------------------------------------------------------------
// The 25,000-event history limit
// ---------------------------------------------------------------------------------------------

const HISTORY_LIMIT = 25_000;

test('a run polled for 30 days hands over to the next execution well before the history limit', async () => {
  const RUN30 = 'run-01J000000000000000000030D';
  const r = await run({
    Take: [taken(claimed(RUN30))],
    StartTask: [started()],
    Started: [finished],
    GetStatus: (p, n) => status('running', 'EXECUTING', { next_poll_seconds: 600, age_seconds: 600 * n }),
    HandOver: [handedOver],
    StartNext: [executionStarted],
  });
  assert.equal(r.status, 'SUCCEEDED');
  assert.equal(r.visited.at(-1), 'HandedOver');
  assert.deepEqual(r.visited.slice(-5), ['CountPoll', 'IsDone', 'HandOver', 'StartNext', 'HandedOver']);
  assert.deepEqual(r.calls.HandOver, [{ action: 'hand_over', lane: LANE, owner: OWNER, generation: 0 }]);
  const next = { lane: LANE, owner: 'lane-abc-2', generation: 1 };
  assert.deepEqual(r.calls.StartNext, [{
    StateMachineArn: STATE_MACHINE_ARN,
    Name: 'lane-abc-2',
    Input: { ...next, AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: executionArn(OWNER) },
  }]);
  for (const s of ['Notify', 'Finish', 'Release', 'CancelTask']) assert.equal(r.calls[s].length, 0, `${s} not called`);
  assert.ok(r.polls > 1000, `${r.polls} polls before hand-over`);
  assert.ok(r.history < HISTORY_LIMIT, `${r.history} history events`);
  assertSmall(r.events);
  const counted = r.events.findLast((e) => e.type === 'StateEntered' && e.state.name === 'HandOver').state.input.history.events;
  console.log(`hand-over while polling: ${r.polls} polls, ${r.history} history events (the definition counted ${counted})`);

  // The successor adopts the run and follows the same task.
  const { AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID, ...input } = r.calls.StartNext[0].Input;
  const s = await run({
    Take: [taken(startedRun(RUN30), { adopted: true }), NOTHING],
    StartTask: [],
    Started: [],
    GetStatus: [status('running', 'EXECUTING'), status('running', 'EXECUTING'), status('succeeded', 'SUCCEEDED')],
    Notify: [reported('succeeded')],
    Finish: [finished],
    Release: [released(false)],
  }, { input });
  assert.equal(s.status, 'SUCCEEDED');
  assert.equal(s.visited.at(-1), 'Idle');
  const successor = { lane: LANE, owner: 'lane-abc-2', run: RUN30 };
  assert.deepEqual(s.calls.Take[0], { action: 'take', lane: LANE, owner: 'lane-abc-2', generation: 1 });
  assert.equal(s.calls.StartTask.length, 0, 'the task is followed, not started again');
  assert.ok(s.calls.GetStatus.every((c) => c.task.task_id === TASK.task_id && JSON.stringify(c.runner) === JSON.stringify(successor)));
  assert.equal(s.polls, 3);
  assert.equal(s.calls.Notify.length, 1, 'reported once');
  assert.deepEqual(s.calls.Finish, [{ action: 'finish', lane: LANE, owner: 'lane-abc-2', run: RUN30, outcome: 'succeeded' }]);
  assert.equal(s.calls.HandOver.length, 0);
});

test('a whole 30-day task (4,320 polls 600 s apart) runs across executions, each under the history limit', async () => {
  const RUN30 = 'run-01J000000000000000000030D';
  const TOTAL_POLLS = (30 * 24 * 3600) / 600;
  let polls = 0;
  let input = INPUT;
  const executions = [];
  for (let generation = 0; generation < 10; generation++) {
    const r = await run({
      Take: [generation === 0 ? taken(claimed(RUN30)) : taken(startedRun(RUN30), { adopted: true }), NOTHING],
      StartTask: generation === 0 ? [started()] : [],
      Started: generation === 0 ? [finished] : [],
      GetStatus: () => (++polls >= TOTAL_POLLS
        ? status('succeeded', 'SUCCEEDED', { age_seconds: 600 * polls })
        : status('running', 'EXECUTING', { next_poll_seconds: 600, age_seconds: 600 * polls })),
      Notify: [reported('succeeded')],
      Finish: [finished],
      Release: [released(false)],
      HandOver: [handedOver],
      StartNext: [executionStarted],
    }, { input });
    executions.push(r);
    assert.equal(r.status, 'SUCCEEDED');
    assert.ok(r.history < HISTORY_LIMIT, `execution ${generation}: ${r.history} history events`);
    if (r.visited.at(-1) !== 'HandedOver') break;
    assert.deepEqual(r.calls.HandOver[0], { action: 'hand_over', lane: LANE, owner: input.owner, generation });
    input = r.calls.StartNext[0].Input; // as Step Functions passes it, AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID included
    assert.equal(input.generation, generation + 1);
    assert.equal(r.calls.StartNext[0].Name, input.owner);
  }
  const last = executions.at(-1);
  assert.equal(last.visited.at(-1), 'Idle');
  assert.equal(polls, TOTAL_POLLS);
  assert.ok(executions.length >= 3, `${executions.length} executions`);
  assert.deepEqual(executions.map((e) => e.calls.StartTask.length), [1, ...Array(executions.length - 1).fill(0)], 'started once');
  assert.deepEqual(executions.map((e) => e.calls.Notify.length), [...Array(executions.length - 1).fill(0), 1], 'reported once');
  assert.deepEqual(last.calls.Finish, [{ action: 'finish', lane: LANE, owner: input.owner, run: RUN30, outcome: 'succeeded' }]);
  console.log(`30 days: ${executions.length} executions, polls ${executions.map((e) => e.polls).join(' + ')}, history events ${executions.map((e) => e.history).join(', ')}`);
});

test('a run cancelled at its deadline is reported timed out even when a hand-over comes while it is cancelling', async () => {
  // Past its deadline at poll 1,000, the task takes a while to cancel. It ends while the
  // lane passes to the next execution, or, if the runner does not hand over mid-cancel, 600
  // polls later.
  const RUN30 = 'run-01J000000000000000000030D';
  let polls = 0;
  let cancelledAt;
  const getStatus = (p) => {
    polls += 1;
    if (p.runner.owner !== OWNER || (cancelledAt && polls >= cancelledAt + 600)) return status('canceled', 'CANCELED');
    if (p.cancel_requested) return status('running', 'CANCELING', { timed_out: true, next_poll_seconds: 15 });
    return status('running', 'EXECUTING', { timed_out: polls >= 1000, next_poll_seconds: 600 });
  };
  const notify = (p) => reported(p.status.phase === 'canceled' && p.timed_out ? 'timed_out' : p.status.phase); // as notify decides
  const cancel = (p) => { cancelledAt ??= polls; return cancelAnswer('requested', 'running', 'CANCELING', { timed_out: true }); };
  const first = await run({
    Take: [taken(claimed(RUN30)), NOTHING],
    StartTask: [started()],
    Started: [finished],
    GetStatus: getStatus,
    CancelTask: cancel,
    Notify: [notify],
    Finish: [finished],
    Release: [released(false)],
    HandOver: [handedOver],
    StartNext: [executionStarted],
  });
  assert.ok(first.history < HISTORY_LIMIT, `${first.history} history events`);
  const finishes = [...first.calls.Finish];
  if (first.visited.at(-1) === 'HandedOver') {
    const inFlight = finishes.length === 0;
    const second = await run({
      Take: inFlight ? [taken(startedRun(RUN30), { adopted: true }), NOTHING] : [NOTHING],
      GetStatus: getStatus,
      CancelTask: cancel,
      Notify: [notify],
      Finish: [finished],
      Release: [released(false)],
    }, { input: first.calls.StartNext[0].Input });
    finishes.push(...second.calls.Finish);
  }
  assert.deepEqual(finishes.map((f) => [f.run, f.outcome]), [[RUN30, 'timed_out']]);
});

test('a file system busy for weeks: the runner hands over from the busy loop, and the successor starts the same run', async () => {
  const r = await run({
    Take: [taken(claimed())],
    StartTask: always(busy({ next_poll_seconds: 600 })),
    HandOver: [handedOver],
    StartNext: [executionStarted],
  });
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(r.visited.slice(-4), ['IsBusy', 'HandOver', 'StartNext', 'HandedOver']);
  assert.ok(r.calls.StartTask.length > 1000, `${r.calls.StartTask.length} busy rounds`);
  assert.ok(r.history < HISTORY_LIMIT, `${r.history} history events`);
  assert.equal(r.calls.Started.length, 0);
  console.log(`hand-over while busy: ${r.calls.StartTask.length} start attempts, ${r.history} history events`);

  const s = await run(oneRun({
    Take: [taken(claimed(), { adopted: true }), NOTHING],
    GetStatus: [status('succeeded', 'SUCCEEDED')],
  }), { input: r.calls.StartNext[0].Input });
  assert.deepEqual(s.calls.StartTask, [{ runner: { ...RUNNER, owner: 'lane-abc-2' } }]);
  assert.equal(s.visited.at(-1), 'Idle');
});

test('a lane with runs queued for days hands over between runs', async () => {
  let n = 0;
  const r = await run({
    Take: () => taken(claimed(`run-${String(++n).padStart(26, '0')}`), { backlog: 1 }),
    StartTask: always(started()),
    Started: always(finished),
    GetStatus: always(status('succeeded', 'SUCCEEDED')),
    Notify: always(reported('succeeded')),
    Finish: always(finished),
    HandOver: [handedOver],
    StartNext: [executionStarted],
  });
  assert.equal(r.status, 'SUCCEEDED');
  assert.deepEqual(r.visited.slice(-5), ['CountRun', 'Continue', 'HandOver', 'StartNext', 'HandedOver']);
  assert.equal(r.calls.Finish.length, r.calls.Take.length, 'hands over between runs, none in flight');
  assert.ok(r.calls.Take.length > 100, `${r.calls.Take.length} runs`);
  assert.ok(r.history < HISTORY_LIMIT, `${r.history} history events`);
  console.log(`hand-over between runs: ${r.calls.Take.length} runs, ${r.history} history events`);
});

// ---------------------------------------------------------------------------------------------
// The definition itself
// ---------------------------------------------------------------------------------------------

test('the definition uses exactly the five function placeholders and the expected Task states', () => {
  const placeholders = new Set([...definitionText.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]));
  assert.deepEqual([...placeholders].sort(), [...SUBSTITUTIONS].sort());
  assert.deepEqual(LAMBDA_STATES.sort(), Object.keys(FUNCTION_OF).sort(), 'each Lambda state calls its function');
  for (const name of LAMBDA_STATES) {
    assert.equal(definition.States[name].Parameters.FunctionName, functionArn(FUNCTION_OF[name]), name);
  }
  assert.deepEqual(TASK_STATES.filter((n) => !LAMBDA_STATES.includes(n)), ['StartNext']);
  assert.equal(definition.States.StartNext.Resource, 'arn:aws:states:::states:startExecution');
  assert.equal(definition.States.LaneLost.Type, 'Succeed');
  assert.equal(definition.States.HandedOver.Type, 'Succeed');
  assert.equal(definition.States.RunnerFailed.Type, 'Fail');
});

test('every Lambda state retries throttling, Lambda service errors, crashes and timeouts, and nothing that cannot succeed', () => {
  for (const name of LAMBDA_STATES) {
    const retried = new Set(definition.States[name].Retry.flatMap((r) => r.ErrorEquals));
    // A callback state's States.Timeout is its wait ending (the fallback), not a failure.
    const transient = definition.States[name].Resource === CALLBACK ? TRANSIENT.filter((e) => e !== 'States.Timeout') : TRANSIENT;
    for (const error of transient) assert.ok(retried.has(error), `${name} retries ${error}`);
    if (transient !== TRANSIENT) assert.ok(!retried.has('States.Timeout') && !retried.has('States.HeartbeatTimeout'), `${name} ends its wait on a timeout`);
    for (const never of ['States.ALL', 'States.TaskFailed', 'LeaseLost', 'InvalidJob', 'NotFound']) {
      assert.ok(!retried.has(never), `${name} never retries ${never}`);
    }
  }
});

test('every state that renews the lease stops at LaneLost when it is lost, before any other catcher', () => {
  const renewing = LAMBDA_STATES.filter((name) => {
    const payload = definition.States[name].Parameters.Payload;
    return FUNCTION_OF[name] === 'LaneFunctionArn' || 'runner.$' in payload;
  });
  assert.ok(renewing.length >= 12, renewing.join());
  for (const name of renewing) {
    const [first] = definition.States[name].Catch;
    assert.deepEqual(first.ErrorEquals, ['LeaseLost'], `${name}: LeaseLost is caught first`);
    assert.equal(first.Next, 'LaneLost', `${name}: LeaseLost ends in LaneLost`);
  }
  for (const name of ['StartTask', 'GetStatus', 'CancelTask', 'Notify', 'NotifyCouldNotStart', 'NotifyNeverStarted', 'NotifyLostTrack']) {
    assert.deepEqual(definition.States[name].Parameters.Payload['runner.$'], '$.runner', `${name} passes the runner`);
  }
});

test('every Lambda state passes only what its function needs and keeps only what later states read', () => {
  const paths = (value) => (typeof value === 'string' ? [value] : value && typeof value === 'object' ? Object.values(value).flatMap(paths) : []);
  for (const name of TASK_STATES) {
    const state = definition.States[name];
    for (const path of paths(state.Parameters)) {
      assert.notEqual(path, '$', `${name} does not pass the whole state`);
      assert.notEqual(path, '$.taken', `${name} does not pass the take answer`);
      if (path.startsWith('$.taken')) assert.deepEqual([name, path], ['NotifyExpired', '$.taken.expired']);
    }
    if (LAMBDA_STATES.includes(name)) {
      assert.deepEqual(Object.keys(state.Parameters), ['FunctionName', 'Payload'], `${name} sends only FunctionName and Payload`);
      assert.ok(state.ResultPath === null || state.ResultSelector, `${name} drops its result or reduces it`);
    }
  }
  // Prepare starts each run from a fresh state: the take answer (and its expired list) stays behind.
  assert.ok(!('taken.$' in definition.States.Prepare.Parameters));
});

test('every choice that may hand over does so past one shared threshold, with room to spare', () => {
  const thresholdOf = (name) => {
    const rules = definition.States[name].Choices.filter((c) => c.Next === 'HandOver');
    assert.equal(rules.length, 1, `${name} has one hand-over rule`);
    const conditions = rules[0].And ?? [rules[0]];
    const count = conditions.find((c) => c.Variable === '$.history.events');
    assert.ok(count && 'NumericGreaterThanEquals' in count, `${name} hands over on $.history.events >= N`);
    return count.NumericGreaterThanEquals;
  };
  const thresholds = ['IsBusy', 'IsDone', 'Continue'].map(thresholdOf);
  assert.deepEqual(thresholds, [15000, 15000, 15000]);
  // Ending, timing out and cancelling come before handing over.
  const order = (name) => definition.States[name].Choices.map((c) => c.Next);
  assert.ok(order('IsBusy').indexOf('NeverStarted') < order('IsBusy').indexOf('HandOver'));
  for (const next of ['Notify', 'MarkTimedOut', 'MarkCanceled']) {
    assert.ok(order('IsDone').indexOf(next) < order('IsDone').indexOf('HandOver'), `IsDone: ${next} first`);
  }
  assert.deepEqual(definition.States.Init.Parameters.history, { events: 0 }, 'each execution counts from zero');
});

test('every Count state adds a positive number to the budget, and every loop passes one', () => {
  const counts = Object.keys(definition.States).filter((n) => n.startsWith('Count'));
  assert.deepEqual(counts.sort(), ['CountAwait', 'CountBusy', 'CountPoll', 'CountRun', 'CountTake']);
  for (const name of counts) {
    const state = definition.States[name];
    assert.equal(state.Type, 'Pass');
    assert.equal(state.ResultPath, '$.history');
    const m = /^States\.MathAdd\(\$\.history\.events, (\d+)\)$/.exec(state.Parameters['events.$']);
    assert.ok(m && Number(m[1]) > 0, `${name} adds a positive number`);
  }
  // Without the Count states the graph has no cycle: no loop can grow the history uncounted.
  // A choice taken once per run is no loop: its rule requires $.flags.cancel_requested false
  // and the state it leads to sets it true (only Prepare, after a counted Take, resets it).
  const oncePerRun = (rule) => {
    const guard = (rule.And ?? [rule]).some((c) => c.Variable === '$.flags.cancel_requested' && c.BooleanEquals === false);
    const target = definition.States[rule.Next];
    return guard && target.ResultPath === '$.flags' && target.Result?.cancel_requested === true;
  };
  const next = (s) => [
    s.Next, s.Default,
    ...(s.Choices ?? []).filter((c) => !oncePerRun(c)).map((c) => c.Next),
    ...(s.Catch ?? []).map((c) => c.Next),
  ].filter(Boolean);
  const resets = Object.keys(definition.States).filter((n) => JSON.stringify(definition.States[n]).includes('"cancel_requested":false'));
  assert.deepEqual(resets, ['Prepare'], 'only Prepare clears the cancel flag');
  const seen = new Map();
  const visit = (name, path) => {
    if (counts.includes(name)) return;
    if (seen.get(name) === 'open') assert.fail(`uncounted loop: ${[...path, name].join(' -> ')}`);
    if (seen.get(name) === 'done') return;
    seen.set(name, 'open');
    for (const n of next(definition.States[name])) visit(n, [...path, name]);
    seen.set(name, 'done');
  };
  for (const name of Object.keys(definition.States)) visit(name, []);
});
