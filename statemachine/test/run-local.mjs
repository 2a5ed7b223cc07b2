// Runs statemachine/ferry.asl.json (the lane runner) locally with aws-local-stepfunctions,
// its Lambda states served by the real function binaries through a Lambda Invoke API endpoint,
// its StartNext state (states:startExecution, a runner's hand-over) sent to a Step Functions
// API endpoint (the emulator's). Test and demo infrastructure: every state runs; only Wait
// states and Retry pauses can be shortened or scaled.
//
//   node --import ./polyfill.mjs run-local.mjs --lambda http://127.0.0.1:9000 \
//        --input '{"lane": ..., "owner": ..., "generation": 0}' [--name execution-name]
//        [--state-machine-arn ARN] [--sfn-endpoint URL] [--definition PATH]
//        [--wait-ms 200 | --time-scale 0.05] [--retry-ms 100] [--quiet | --jsonl]
//
// --time-scale F makes each Wait last F times the seconds the state machine asked for (the
// `next_poll_seconds` the function before it answered), in real time: the whole runner runs
// F times faster, its waits in proportion. --wait-ms instead makes every Wait that long.
//
// Callback states (the `.waitForTaskToken` pattern), which aws-local-stepfunctions 3.0.0 does
// not run (no `$$.Task.Token` in its context, no HeartbeatSeconds, a 60-s default timeout on
// every Task), are run here as Step Functions runs them (developer guide, "Wait for a Callback
// with Task Token"): each attempt gets a fresh token, registered with the emulator reached at
// --sfn-endpoint; the function is invoked with it (its answer is ignored, its error fails the
// state); then the state waits until SendTaskSuccess (its result: the output),
// SendTaskFailure (it fails with that error and cause), HeartbeatSeconds without a
// heartbeat (States.HeartbeatTimeout) or TimeoutSeconds in all (States.Timeout), both scaled
// like Waits by --time-scale (real seconds with --wait-ms). See awaitCallback.
//
// Step Functions' payload quota is enforced as Step Functions enforces it (see QuotaStateMachine):
// an execution's input, every state's input and output, a Task's parameters and its result
// (the Lambda invoke result, a callback's SendTaskSuccess output, StartExecution's answer) are at
// most PAYLOAD_LIMIT_BYTES of UTF-8 JSON, else the execution fails with
// States.DataLimitExceeded, which no Retry or Catch takes. A function's response over Lambda's
// 6 MB comes back from the Lambda service (local/ferry_local/lambdas.py) as the function error
// Function.ResponseSizeTooLarge, and fails the state under that name, as a function's own
// errors do.
//
// --definition PATH runs another definition than ../ferry.asl.json (tests of this runner).
//
// --input-file PATH (`-`: standard input) instead of --input takes inputs longer than one
// command-line argument may be (128 KiB on Linux; a DataSync filter alone can be 100 KB).
//
// Prints each state as it is entered (stderr) and the execution's result or error as JSON
// (stdout). With --jsonl, stdout is instead one JSON object per line: every event of the
// execution (`{"type": "StateExited", "state": "GetStatus", "output": {...}, ...}`) as it
// happens, then `{"type": "Result", "status": ..., "history_events": n, ...}` (for programs that
// follow a run, such as the demo and the end-to-end tests in local/). `history_events` counts
// the events Step Functions would keep in the execution's history (ExecutionStarted and its
// end; each state's Entered and Exited; each Task attempt's Scheduled, Started and
// Succeeded/Failed; a callback attempt also TaskSubmitted), which it caps at 25,000. Exit
// status: 0 when the execution succeeds, 1 when it fails, 2 on bad usage. Stopped (SIGTERM),
// it first closes the task tokens its callback states wait on, as a stopped execution's tasks
// end: a later SendTaskSuccess is refused TaskTimedOut.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { StateMachine } from 'aws-local-stepfunctions';

const DEFINITION = new URL('../ferry.asl.json', import.meta.url);

/** The definition with each `${XFunctionArn}` replaced by an ARN whose name is the binary. */
export function loadDefinition(path = DEFINITION) {
  const text = readFileSync(path, 'utf8');
  const binaries = {
    StartTaskFunctionArn: 'ferry-start-task',
    TaskStatusFunctionArn: 'ferry-task-status',
    CancelTaskFunctionArn: 'ferry-cancel-task',
    NotifyFunctionArn: 'ferry-notify',
    LaneFunctionArn: 'ferry-lane',
  };
  const substituted = Object.entries(binaries).reduce(
    (t, [name, bin]) => t.replaceAll('${' + name + '}', `arn:aws:lambda:us-east-1:000000000000:function:${bin}`),
    text,
  );
  return JSON.parse(substituted);
}

/** Invokes a function through the Lambda Invoke API; a function error becomes a thrown error
 * named by its errorType, as Step Functions' lambda:invoke integration reports it (Lambda's own
 * answer to a response over 6 MB, Function.ResponseSizeTooLarge, included). An error of the
 * Invoke API itself (HTTP 4xx/5xx with X-Amzn-ErrorType, e.g. RequestTooLargeException, 413) is
 * named `Lambda.<ErrorType>`, as the integration names Lambda's exceptions (developer guide,
 * "Handling errors in Step Functions workflows": Lambda.ServiceException,
 * Lambda.TooManyRequestsException, ...). */
async function invoke(lambdaUrl, functionArn, payload) {
  const name = functionArn.split(':').pop();
  const response = await fetch(`${lambdaUrl}/2015-03-31/functions/${name}/invocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
  const text = await response.text();
  let body;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    body = text;
  }
  const functionError = response.headers.get('x-amz-function-error');
  const apiError = response.ok ? null : response.headers.get('x-amzn-errortype');
  if (!response.ok || functionError || (body && typeof body === 'object' && 'errorType' in body)) {
    const error = new Error(typeof body === 'string' ? JSON.stringify({ errorType: 'Lambda.Unknown', errorMessage: body }) : JSON.stringify(body));
    error.name = apiError ? `Lambda.${apiError.split(':')[0]}` : (body && body.errorType) || 'Lambda.Unknown';
    throw error;
  }
  return { StatusCode: 200, ExecutedVersion: '$LATEST', Payload: body };
}

/** What `$$.Task.Token` resolves to in the library; each attempt replaces it with a token. */
export const TOKEN_PLACEHOLDER = 'ferry-local-task-token';
const CALLBACK_SUFFIX = '.waitForTaskToken';
const CALLBACK_LAMBDA = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
// The library's own timer for a callback state: never (setTimeout fires at once beyond
// 2^31 - 1 ms, about 24.8 days; this is 23 days). awaitCallback enforces the real limits.
const NEVER_SECONDS = 2_000_000;
const TOKEN_POLL_MS = 50;
/** Tokens callback states wait on now (closed as `aborted` when the runner is stopped). */
const waiting = new Set();

const named = (name, message) => Object.assign(new Error(message), { name });

// ---------------------------------------------------------------------------------------------
// Step Functions' payload quota: the one place that knows it
// ---------------------------------------------------------------------------------------------

/** "Maximum input or output size for a task, state, or execution: 262,144 bytes of data as a
 * UTF-8 encoded string. This quota affects tasks (activity, Lambda function, or integrated
 * service), state or execution output, and input data when scheduling a task, entering a
 * state, or starting an execution" (Step Functions developer guide, "Step Functions service
 * quotas", https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html). */
export const PAYLOAD_LIMIT_BYTES = 262_144;

/** What a payload weighs for that quota: the UTF-8 bytes of its JSON text (compact, as Step
 * Functions passes JSON between states; "é" is two bytes, the quotes around a string count). */
export function payloadBytes(value) {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');
}

/** `value` when it is within the quota; else throws States.DataLimitExceeded naming `state`,
 * what passed (`what`: "returned a result", "provided parameters", ...) and its size.
 *
 * The error is terminal: neither retried nor caught, not by States.ALL and not by a Catch that
 * names States.DataLimitExceeded ("States.ALL ... cannot catch the States.DataLimitExceeded
 * terminal error"; "DataLimitExceeded is a terminal error that can't be caught by the
 * States.ALL error type": developer guide, "Handling errors in Step Functions workflows",
 * https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html). The guide
 * says nothing of a Catch naming the error; histories recorded against AWS in LocalStack's
 * validated tests (tests/aws/services/stepfunctions/v2/error_handling/test_states_errors, 2024)
 * show a Lambda task's oversized result caught by both, while an oversized state output fails
 * the execution at once. Strict choice, as the guide reads: nothing catches it here, so a test
 * fails wherever AWS might. The cause's first sentence is AWS's wording for a result ("returned
 * a result": the same histories) and a task's parameters ("provided parameters": as reported
 * from production, mbc-net/mbc-cqrs-serverless#466); "received ... input" and the sizes are the
 * runner's own. */
export function checkPayload(value, state, what) {
  const bytes = payloadBytes(value);
  if (bytes <= PAYLOAD_LIMIT_BYTES) return value;
  const count = (n) => n.toLocaleString('en-US');
  const error = named('States.DataLimitExceeded',
    `The state/task '${state}' ${what} with a size exceeding the maximum number of bytes service limit. ` +
    `(${count(bytes)} bytes of UTF-8 JSON; the limit is ${count(PAYLOAD_LIMIT_BYTES)})`);
  throw Object.assign(error, { isRetryable: false, isCatchable: false });
}

/** A Task's handler within the quota: its parameters (the state's input after InputPath and
 * Parameters, "when scheduling a task") and its result ("tasks (... Lambda function, or
 * integrated service)"; the integration's whole result, before ResultSelector). */
function boundedTask(state, handler) {
  return async (params) => {
    checkPayload(params, state, 'provided parameters');
    return checkPayload(await handler(params), state, 'returned a result');
  };
}

/**
 * aws-local-stepfunctions' StateMachine with Step Functions' payload quota: the execution's
 * input, each state's input as it is entered, each state's output (after ResultSelector,
 * ResultPath and OutputPath, or a Catch's ResultPath) and each Task's parameters and result
 * are checked against PAYLOAD_LIMIT_BYTES. A state's input and output are checked where the
 * library logs a state entered and exited, outside its Retry and Catch handling; a Task's
 * parameters and result in its handler, as errors no Retry or Catch takes (see checkPayload).
 *
 * Relies on aws-local-stepfunctions 3.0.0 (pinned in package-lock.json): `run` calls
 * `this.execute(input, options, cleanup)` with `options.eventLogger`. Map and Parallel states,
 * whose branches the library runs as plain StateMachines, are refused: the quota would not be
 * enforced inside them.
 */
export class QuotaStateMachine extends StateMachine {
  constructor(definition, options) {
    const nested = Object.entries(definition.States).filter(([, s]) => s.Type === 'Map' || s.Type === 'Parallel');
    if (nested.length > 0) throw new Error(`${nested.map(([n]) => n).join(', ')}: Map and Parallel states run without the payload quota here`);
    super(definition, options);
  }

  run(input, options = {}) {
    const overrides = options.overrides ?? {};
    const handlers = Object.fromEntries(Object.entries(overrides.taskResourceLocalHandlers ?? {})
      .map(([state, handler]) => [state, boundedTask(state, handler)]));
    return super.run(input, { ...options, overrides: { ...overrides, taskResourceLocalHandlers: handlers } });
  }

  execute(input, options, cleanupFn) {
    const logger = options.eventLogger;
    if (typeof logger?.dispatchStateEnteredEvent !== 'function' || typeof logger?.dispatchStateExitedEvent !== 'function') {
      throw new Error('aws-local-stepfunctions no longer logs states where QuotaStateMachine checks them: update it');
    }
    const entered = logger.dispatchStateEnteredEvent.bind(logger);
    const exited = logger.dispatchStateExitedEvent.bind(logger);
    // The first state's input is the execution's input ("starting an execution").
    let first = true;
    logger.dispatchStateEnteredEvent = (name, type, stateInput) => {
      checkPayload(stateInput, name, first ? "received the execution's input" : 'received an input');
      first = false;
      entered(name, type, stateInput);
    };
    logger.dispatchStateExitedEvent = (name, type, stateInput, output) => {
      checkPayload(output, name, 'returned a result');
      exited(name, type, stateInput, output);
    };
    return super.execute(input, options, cleanupFn);
  }
}

/** Where a callback state's HeartbeatSeconds or TimeoutSeconds comes from: a number in the
 * definition, or (for the *Path form) the state's Payload field read from the same path, since
 * the library hands a task handler its Payload only. Null when the state sets neither. */
function limitSource(name, state, field, payloadField) {
  if (state[field] !== undefined) return { seconds: state[field] };
  const path = state[`${field}Path`];
  if (path === undefined) return null;
  if (state.InputPath !== undefined || state.Parameters?.Payload?.[`${payloadField}.$`] !== path) {
    throw new Error(`${name}: ${field}Path ${path} must also be passed as Parameters.Payload["${payloadField}.$"] (same path, no InputPath): the local runner reads it there`);
  }
  return { payloadField };
}

/** Readies the definition's callback states (Task states whose Resource ends in
 * `.waitForTaskToken`) for the library: HeartbeatSeconds(Path) and TimeoutSeconds(Path) are
 * taken out, to be enforced by awaitCallback, and the library's own timeout set to never.
 * Returns each such state's limits by name. Refuses what cannot be emulated faithfully:
 * another integration than lambda:invoke, and States.TaskFailed in its Retry or Catch (the
 * library would let it match States.Timeout, which Step Functions excludes from it; its
 * StatesTimeoutError, which it exempts, is not exported). */
export function prepareCallbackStates(definition) {
  const limits = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type !== 'Task' || !String(state.Resource).endsWith(CALLBACK_SUFFIX)) continue;
    if (state.Resource !== CALLBACK_LAMBDA) {
      throw new Error(`${name}: only ${CALLBACK_LAMBDA} callback states run locally, not ${state.Resource}`);
    }
    if ([...(state.Retry ?? []), ...(state.Catch ?? [])].some((r) => r.ErrorEquals.includes('States.TaskFailed'))) {
      throw new Error(`${name}: States.TaskFailed in a callback state's Retry or Catch cannot be emulated (it must not match States.Timeout); name the errors`);
    }
    limits[name] = {
      heartbeat: limitSource(name, state, 'HeartbeatSeconds', 'heartbeat_seconds'),
      timeout: limitSource(name, state, 'TimeoutSeconds', 'timeout_seconds'),
    };
    for (const field of ['HeartbeatSeconds', 'HeartbeatSecondsPath', 'TimeoutSecondsPath']) delete state[field];
    state.TimeoutSeconds = NEVER_SECONDS;
  }
  return limits;
}

/** A token as Step Functions issues them: opaque, unique per attempt (base64url, so it is also
 * one URL path segment of the emulator's control API). */
export function newTaskToken() {
  return `AQ${randomBytes(96).toString('base64url')}`;
}

/** The payload with the placeholder `$$.Task.Token` resolved to replaced by `token`. */
export function withToken(payload, token) {
  return JSON.parse(JSON.stringify(payload).replaceAll(TOKEN_PLACEHOLDER, token));
}

/** A limit in real milliseconds: its seconds (from the definition or the payload) times
 * `scale`. A value that is not a positive integer fails the execution with States.Runtime, as
 * a *SecondsPath resolving to one does in Step Functions, where no Retry or Catch (not even
 * States.ALL) takes States.Runtime (developer guide, "Error handling in Step Functions"). */
export function limitMs(source, payload, scale) {
  if (source === null) return null;
  const seconds = source.seconds ?? payload?.[source.payloadField];
  if (!Number.isInteger(seconds) || seconds < 1) {
    const error = named('States.Runtime', `${source.payloadField ?? 'the limit'} is ${JSON.stringify(seconds)}, not a positive integer of seconds`);
    throw Object.assign(error, { isRetryable: false, isCatchable: false });
  }
  return seconds * 1000 * scale;
}

/** The emulator's task-token control API (emulator/ferry_emulator/task_tokens.py) for one
 * token. An unreachable emulator fails the state (States.TaskFailed). */
function tokenApi(sfnUrl, token) {
  const url = `${sfnUrl.replace(/\/$/, '')}/_ferry/task-tokens`;
  const call = async (method, path, body) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).catch((e) => { throw named('States.TaskFailed', `task token API at ${url}: ${e.message}`); });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw named('States.TaskFailed', `task token API ${method} ${path || '/'}: HTTP ${response.status} ${JSON.stringify(answer)}`);
    return answer;
  };
  return {
    register: (execution, state) => call('POST', '', { token, execution, state }),
    get: () => call('GET', `/${token}`),
    close: (status, error, cause) => call('POST', `/${token}/close`, { status, error, cause }),
  };
}

/** The task's result once it has one: the SendTaskSuccess output, or the failure thrown under
 * its error name (SendTaskFailure's, or the timeout's the runner closed it with). */
function outcome(record) {
  if (record.status === 'succeeded') return record.output;
  throw named(record.error ?? '', record.cause ?? '');
}

/** Waits for the token's answer, polling the emulator every TOKEN_POLL_MS; past the heartbeat
 * (since the attempt began or the last SendTaskHeartbeat) or the timeout (since the attempt
 * began), closes it as timed out. An answer that reached the emulator first still wins. */
async function answerOf(tokens, began, heartbeatMs, timeoutMs) {
  for (;;) {
    const record = await tokens.get();
    if (record.status !== 'waiting') return outcome(record);
    const now = Date.now();
    const sinceBeat = now - Math.max(began, record.last_heartbeat * 1000);
    if (timeoutMs !== null && now - began >= timeoutMs) {
      return outcome(await tokens.close('timed_out', 'States.Timeout', `no answer within the state's TimeoutSeconds (${timeoutMs} ms here)`));
    }
    if (heartbeatMs !== null && sinceBeat >= heartbeatMs) {
      return outcome(await tokens.close('timed_out', 'States.HeartbeatTimeout', `no heartbeat within the state's HeartbeatSeconds (${heartbeatMs} ms here)`));
    }
    await sleep(TOKEN_POLL_MS);
  }
}

/** One attempt of a callback state (lambda:invoke.waitForTaskToken): register a fresh token,
 * invoke the function with it (its answer is ignored; its error fails the state, and the token
 * is closed), then wait for the token's answer. `scale` multiplies the state's seconds. */
async function awaitCallback({ lambdaUrl, sfnUrl, executionArn, state, limits, scale }, params) {
  if (!sfnUrl) throw named('States.TaskFailed', 'no --sfn-endpoint to register task tokens with');
  const token = newTaskToken();
  const payload = withToken(params.Payload, token);
  const heartbeatMs = limitMs(limits.heartbeat, payload, scale);
  const timeoutMs = limitMs(limits.timeout, payload, scale);
  const tokens = tokenApi(sfnUrl, token);
  await tokens.register(executionArn, state);
  const began = Date.now();
  waiting.add(tokens);
  try {
    try {
      await invoke(lambdaUrl, params.FunctionName, payload);
    } catch (e) {
      await tokens.close('failed', e.name, e.message);
      throw e;
    }
    return await answerOf(tokens, began, heartbeatMs, timeoutMs);
  } finally {
    waiting.delete(tokens);
  }
}

/** Closes every token a callback state waits on as `aborted` (the execution stopped). */
export async function abortWaitingTokens() {
  await Promise.allSettled([...waiting].map((tokens) => tokens.close('aborted', 'States.Aborted', 'the execution was stopped')));
}

/** StartExecution on a Step Functions API endpoint (AWS JSON 1.0; the emulator takes any
 * signature). An execution name in use answers `StepFunctions.ExecutionAlreadyExistsException`,
 * as the states:startExecution integration names the API's error. */
async function startExecution(sfnUrl, params) {
  if (!sfnUrl) throw Object.assign(new Error('no --sfn-endpoint to start executions on'), { name: 'States.TaskFailed' });
  const response = await fetch(sfnUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': 'AWSStepFunctions.StartExecution',
      authorization: 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/states/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: JSON.stringify({ stateMachineArn: params.StateMachineArn, name: params.Name, input: JSON.stringify(params.Input) }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const type = String(body.__type ?? 'TaskFailed').split('#').pop();
    throw Object.assign(new Error(body.message ?? JSON.stringify(body)), { name: `StepFunctions.${type}` });
  }
  return { ExecutionArn: body.executionArn, StartDate: body.startDate };
}

/** Runs one execution; `onEvent(event)` sees every event log entry. `timeScale` (when set)
 * makes each Wait, and each callback state's heartbeat and timeout, last that fraction of the
 * seconds asked for; else Waits last `waitMs` and callback limits their seconds. */
export async function runLocal({ lambdaUrl, sfnUrl, stateMachineArn, input, name, waitMs = 0, timeScale, retryMs = 0, onEvent = () => {}, definition = loadDefinition() }) {
  const callbackLimits = prepareCallbackStates(definition);
  const callbackStates = Object.keys(callbackLimits);
  const states = Object.entries(definition.States);
  const lambdaStates = states.filter(([, s]) => s.Type === 'Task' && s.Resource === 'arn:aws:states:::lambda:invoke').map(([n]) => n);
  const startStates = states.filter(([, s]) => s.Type === 'Task' && s.Resource === 'arn:aws:states:::states:startExecution').map(([n]) => n);
  const taskStates = new Set([...lambdaStates, ...startStates]);
  const waitStates = states.filter(([, s]) => s.Type === 'Wait').map(([n]) => n);
  // Scaled waits: every Wait follows the function whose answer set its seconds
  // (`next_poll_seconds`), so the last such answer is the wait asked for; the one Wait before
  // any function, Settle, waits what the input asks (`settle_seconds`, a replacement runner's).
  let askedSeconds = typeof input?.settle_seconds === 'number' ? input.settle_seconds : 0;
  const waits = {};
  for (const state of waitStates) {
    Object.defineProperty(waits, state, {
      enumerable: true,
      get: () => (timeScale === undefined ? waitMs : Math.round(askedSeconds * timeScale * 1000)),
    });
  }
  const call = async (params) => {
    const answer = await invoke(lambdaUrl, params.FunctionName, params.Payload);
    const seconds = answer.Payload?.next_poll_seconds;
    if (typeof seconds === 'number') askedSeconds = seconds;
    return answer;
  };
  const machineArn = stateMachineArn ?? 'arn:aws:states:us-east-1:000000000000:stateMachine:ferry';
  const executionArn = `${machineArn.replace(':stateMachine:', ':execution:')}:${name}`;
  const callback = (state) => (params) => awaitCallback(
    { lambdaUrl, sfnUrl, executionArn, state, limits: callbackLimits[state], scale: timeScale ?? 1 }, params);
  const machine = new QuotaStateMachine(definition);
  const execution = machine.run(input, {
    overrides: {
      taskResourceLocalHandlers: Object.fromEntries([
        ...lambdaStates.map((state) => [state, call]),
        ...startStates.map((state) => [state, (params) => startExecution(sfnUrl, params)]),
        ...callbackStates.map((state) => [state, callback(state)]),
      ]),
      waitTimeOverrides: waits,
      retryIntervalOverrides: Object.fromEntries([...lambdaStates, ...callbackStates].map((s) => [s, retryMs])),
    },
    context: {
      Execution: { Id: executionArn, Name: name, Input: input, StartTime: new Date().toISOString() },
      StateMachine: { Id: machineArn, Name: machineArn.split(':').pop() },
      Task: { Token: TOKEN_PLACEHOLDER },
    },
  });
  // ExecutionStarted and the execution's end.
  let historyEvents = 2;
  // Each attempt of a Task: Scheduled, Started, Succeeded or Failed (or TimedOut); a callback
  // attempt also TaskSubmitted, once its function answered (API reference, HistoryEvent).
  const attemptEvents = (state) => (callbackStates.includes(state) ? 4 : taskStates.has(state) ? 3 : 0);
  const events = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === 'StateEntered' || event.type === 'StateExited') historyEvents += 1;
      if (event.type === 'StateEntered' || event.type === 'StateRetried') historyEvents += attemptEvents(event.state.name);
      onEvent(event);
    }
  })();
  try {
    const output = await execution.result;
    await events;
    return { status: 'SUCCEEDED', output, history_events: historyEvents };
  } catch (e) {
    await events.catch(() => {});
    const cause = e.cause ?? e;
    return { status: 'FAILED', error: cause.name, cause: cause.message, history_events: historyEvents };
  }
}

/** One event as a flat JSON-able object (the library's events hold the state's definition). */
export function eventRecord(event) {
  const record = { type: event.type, timestamp: event.timestamp ?? Date.now() };
  if (event.state) {
    record.state = event.state.name;
    if (event.type === 'StateExited') record.output = event.state.output;
  }
  if ('Error' in event) record.error = event.Error;
  if ('Cause' in event) record.cause = event.Cause instanceof Error ? event.Cause.message : event.Cause;
  if (event.retry) record.attempt = event.retry.attempt;
  if (event.type === 'ExecutionSucceeded') record.output = event.output;
  return record;
}

function describe(event) {
  const at = new Date(event.timestamp ?? Date.now()).toISOString().slice(11, 23);
  switch (event.type) {
    case 'StateEntered':
      return `${at}  → ${event.state.name}`;
    case 'StateFailed':
      return `${at}  ✗ ${event.state.name}: ${event.Error ?? ''}`;
    case 'StateRetried':
      return `${at}  ↻ ${event.state.name} retry ${event.retry?.attempt ?? ''}`;
    case 'StateCaught':
      return `${at}  ⤷ ${event.state.name} caught`;
    default:
      return null;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      lambda: { type: 'string' },
      input: { type: 'string' },
      'input-file': { type: 'string' },
      name: { type: 'string' },
      'state-machine-arn': { type: 'string' },
      'sfn-endpoint': { type: 'string' },
      definition: { type: 'string' },
      'time-scale': { type: 'string' },
      'wait-ms': { type: 'string', default: '0' },
      'retry-ms': { type: 'string', default: '0' },
      quiet: { type: 'boolean', default: false },
      jsonl: { type: 'boolean', default: false },
    },
  });
  if (!values.lambda || (values.input === undefined) === (values['input-file'] === undefined)) {
    console.error('usage: run-local.mjs --lambda URL (--input JSON | --input-file PATH|-) [--name NAME] [--state-machine-arn ARN] [--sfn-endpoint URL] [--definition PATH] [--wait-ms N | --time-scale F] [--retry-ms N] [--quiet | --jsonl]');
    process.exit(2);
  }
  let input;
  try {
    const file = values['input-file'];
    const text = file === undefined ? values.input : readFileSync(file === '-' ? 0 : file, 'utf8');
    input = JSON.parse(text);
  } catch (e) {
    console.error(`${values.input === undefined ? '--input-file' : '--input'}: ${e.message}`);
    process.exit(2);
  }
  // Then dies of the signal, as it did before callback states.
  process.once('SIGTERM', async () => {
    await Promise.race([abortWaitingTokens(), sleep(1000)]);
    process.kill(process.pid, 'SIGTERM');
  });
  const result = await runLocal({
    definition: loadDefinition(values.definition ?? DEFINITION),
    lambdaUrl: values.lambda.replace(/\/$/, ''),
    sfnUrl: values['sfn-endpoint'],
    stateMachineArn: values['state-machine-arn'],
    input,
    name: values.name ?? `local-${Date.now()}`,
    waitMs: Number(values['wait-ms']),
    timeScale: values['time-scale'] === undefined ? undefined : Number(values['time-scale']),
    retryMs: Number(values['retry-ms']),
    onEvent: (event) => {
      if (values.jsonl) {
        console.log(JSON.stringify(eventRecord(event)));
        return;
      }
      if (values.quiet) return;
      const line = describe(event);
      if (line) console.error(line);
    },
  });
  console.log(JSON.stringify(values.jsonl ? { type: 'Result', ...result } : result));
  process.exit(result.status === 'SUCCEEDED' ? 0 : 1);
}
