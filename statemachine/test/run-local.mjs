// Runs statemachine/ferry.asl.json locally with aws-local-stepfunctions, its Lambda states
// served by the real function binaries through a Lambda Invoke API endpoint (e.g.
// `cargo lambda watch`). Test and demo infrastructure: every state runs; only Wait states and
// Retry pauses can be shortened.
//
//   node --import ./polyfill.mjs run-local.mjs --lambda http://127.0.0.1:9000 \
//        --input '{"job": {...}}' [--name execution-name] [--wait-ms 200] [--retry-ms 100]
//        [--quiet | --jsonl]
//
// --input-file PATH (`-`: standard input) instead of --input takes inputs longer than one
// command-line argument may be (128 KiB on Linux; a DataSync filter alone can be 100 KB).
//
// Prints each state as it is entered (stderr) and the execution's result or error as JSON
// (stdout). With --jsonl, stdout is instead one JSON object per line: every event of the
// execution (`{"type": "StateExited", "state": "GetStatus", "output": {...}, ...}`) as it
// happens, then `{"type": "Result", "status": ..., ...}` (for programs that follow a run, such
// as the demo and the end-to-end tests in local/). Exit status: 0 when the execution succeeds,
// 1 when it fails, 2 on bad usage.
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

/** Runs one execution; `onEvent(event)` sees every event log entry. */
export async function runLocal({ lambdaUrl, input, name, waitMs = 0, retryMs = 0, onEvent = () => {} }) {
  const definition = loadDefinition();
  const states = Object.entries(definition.States);
  const lambdaStates = states.filter(([, s]) => s.Type === 'Task' && s.Resource === 'arn:aws:states:::lambda:invoke').map(([n]) => n);
  const waitStates = states.filter(([, s]) => s.Type === 'Wait').map(([n]) => n);
  const machine = new StateMachine(definition);
  const execution = machine.run(input, {
    overrides: {
      taskResourceLocalHandlers: Object.fromEntries(
        lambdaStates.map((state) => [state, (params) => invoke(lambdaUrl, params.FunctionName, params.Payload)]),
      ),
      waitTimeOverrides: Object.fromEntries(waitStates.map((s) => [s, waitMs])),
      retryIntervalOverrides: Object.fromEntries(lambdaStates.map((s) => [s, retryMs])),
    },
    context: {
      Execution: { Id: `arn:aws:states:us-east-1:000000000000:execution:ferry:${name}`, Name: name, Input: input, StartTime: new Date().toISOString() },
      StateMachine: { Id: 'arn:aws:states:us-east-1:000000000000:stateMachine:ferry', Name: 'ferry' },
    },
  });
  const events = (async () => {
    for await (const event of execution.eventLogs) onEvent(event);
  })();
  try {
    const output = await execution.result;
    await events;
    return { status: 'SUCCEEDED', output };
  } catch (e) {
    await events.catch(() => {});
    const cause = e.cause ?? e;
    return { status: 'FAILED', error: cause.name, cause: cause.message };
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
      'wait-ms': { type: 'string', default: '0' },
      'retry-ms': { type: 'string', default: '0' },
      quiet: { type: 'boolean', default: false },
      jsonl: { type: 'boolean', default: false },
    },
  });
  if (!values.lambda || (values.input === undefined) === (values['input-file'] === undefined)) {
    console.error('usage: run-local.mjs --lambda URL (--input JSON | --input-file PATH|-) [--name NAME] [--wait-ms N] [--retry-ms N] [--quiet | --jsonl]');
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
    input,
    name: values.name ?? `local-${Date.now()}`,
    waitMs: Number(values['wait-ms']),
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
