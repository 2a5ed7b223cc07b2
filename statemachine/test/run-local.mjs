// Runs statemachine/ferry.asl.json (the lane runner) locally with aws-local-stepfunctions,
// its Lambda states served by the real function binaries through a Lambda Invoke API endpoint,
// its StartNext state (states:startExecution, a runner's hand-over) sent to a Step Functions
// API endpoint (the emulator's). Test and demo infrastructure: every state runs; only Wait
// states and Retry pauses can be shortened or scaled.
//
//   node --import ./polyfill.mjs run-local.mjs --lambda http://127.0.0.1:9000 \
//        --input '{"lane": ..., "owner": ..., "generation": 0}' [--name execution-name]
//        [--state-machine-arn ARN] [--sfn-endpoint URL]
//        [--wait-ms 200 | --time-scale 0.05] [--retry-ms 100] [--quiet | --jsonl]
//
// --time-scale F makes each Wait last F times the seconds the state machine asked for (the
// `next_poll_seconds` the function before it answered), in real time: the whole runner runs
// F times faster, its waits in proportion. --wait-ms instead makes every Wait that long.
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
// Succeeded/Failed), which it caps at 25,000. Exit status: 0 when the execution succeeds, 1
// when it fails, 2 on bad usage.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { StateMachine } from 'aws-local-stepfunctions';

/** The definition with each `${XFunctionArn}` replaced by an ARN whose name is the binary. */
export function loadDefinition() {
  const text = readFileSync(new URL('../ferry.asl.json', import.meta.url), 'utf8');
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
 * named by its errorType, as Step Functions' lambda:invoke integration reports it. */
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
  if (!response.ok || functionError || (body && typeof body === 'object' && 'errorType' in body)) {
    const error = new Error(typeof body === 'string' ? JSON.stringify({ errorType: 'Lambda.Unknown', errorMessage: body }) : JSON.stringify(body));
    error.name = (body && body.errorType) || 'Lambda.Unknown';
    throw error;
  }
  return { StatusCode: 200, ExecutedVersion: '$LATEST', Payload: body };
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
 * makes each Wait last that fraction of the seconds asked for, else `waitMs`. */
export async function runLocal({ lambdaUrl, sfnUrl, stateMachineArn, input, name, waitMs = 0, timeScale, retryMs = 0, onEvent = () => {} }) {
  const definition = loadDefinition();
  const states = Object.entries(definition.States);
  const lambdaStates = states.filter(([, s]) => s.Type === 'Task' && s.Resource === 'arn:aws:states:::lambda:invoke').map(([n]) => n);
  const startStates = states.filter(([, s]) => s.Type === 'Task' && s.Resource === 'arn:aws:states:::states:startExecution').map(([n]) => n);
  const taskStates = new Set([...lambdaStates, ...startStates]);
  const waitStates = states.filter(([, s]) => s.Type === 'Wait').map(([n]) => n);
  // Scaled waits: every Wait follows the function whose answer set its seconds
  // (`next_poll_seconds`), so the last such answer is the wait asked for.
  let askedSeconds = 0;
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
  const machine = new StateMachine(definition);
  const execution = machine.run(input, {
    overrides: {
      taskResourceLocalHandlers: Object.fromEntries([
        ...lambdaStates.map((state) => [state, call]),
        ...startStates.map((state) => [state, (params) => startExecution(sfnUrl, params)]),
      ]),
      waitTimeOverrides: waits,
      retryIntervalOverrides: Object.fromEntries(lambdaStates.map((s) => [s, retryMs])),
    },
    context: {
      Execution: { Id: `${machineArn.replace(':stateMachine:', ':execution:')}:${name}`, Name: name, Input: input, StartTime: new Date().toISOString() },
      StateMachine: { Id: machineArn, Name: machineArn.split(':').pop() },
    },
  });
  // ExecutionStarted and the execution's end.
  let historyEvents = 2;
  const events = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === 'StateEntered' || event.type === 'StateExited') historyEvents += 1;
      // Each attempt of a Task: Scheduled, Started, Succeeded or Failed.
      if (event.type === 'StateEntered' && taskStates.has(event.state.name)) historyEvents += 3;
      if (event.type === 'StateRetried') historyEvents += 3;
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
      'time-scale': { type: 'string' },
      'wait-ms': { type: 'string', default: '0' },
      'retry-ms': { type: 'string', default: '0' },
      quiet: { type: 'boolean', default: false },
      jsonl: { type: 'boolean', default: false },
    },
  });
  if (!values.lambda || (values.input === undefined) === (values['input-file'] === undefined)) {
    console.error('usage: run-local.mjs --lambda URL (--input JSON | --input-file PATH|-) [--name NAME] [--state-machine-arn ARN] [--sfn-endpoint URL] [--wait-ms N | --time-scale F] [--retry-ms N] [--quiet | --jsonl]');
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
  const result = await runLocal({
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
