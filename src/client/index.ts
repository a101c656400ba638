/** `ferry submit` and `ferry status`: the command-line client for pipelines. */
import { parseArgs } from 'node:util';
import { readBatch, statusLines } from './status.js';
import { target, UsageError } from './target.js';
import { windowSeconds } from '../openai/batches.js';

const COMMON = {
  'base-url': { type: 'string' },
  'api-key': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function status(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...COMMON, json: { type: 'boolean' } } });
  if (values.help || positionals.length !== 1) throw new UsageError('usage: npx ferry status <batch_id> [--json]');
  const b = await readBatch(target({ baseUrl: values['base-url'], apiKey: values['api-key'] }), positionals[0]);
  process.stdout.write(values.json ? `${JSON.stringify(b, null, 2)}\n` : `${statusLines(b).join('\n')}\n`);
  return 0;
}

async function submitCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...COMMON,
      prompt: { type: 'string', short: 'p' },
      model: { type: 'string', short: 'm', default: 'gemini-2.0-flash' },
      storage: { type: 'string' },
      out: { type: 'string', short: 'o' },
      'completion-window': { type: 'string', default: '24h' },
      execution: { type: 'string' },
      endpoint: { type: 'string', default: 'chat' },
    },
  });
  if (values.help || positionals.length === 0 || !values.prompt) {
    throw new UsageError(
      'usage: npx ferry submit <files or folders> --prompt "…" [--model M] [--storage azure_storage] [--execution gemini_batch] [--endpoint responses] [--out results.jsonl]',
    );
  }
  if (values.storage !== undefined && values.storage !== 'azure_storage' && values.storage !== 'gemini') {
    throw new UsageError('--storage takes "azure_storage" (or "gemini", the default)');
  }
  if (
    values.execution !== undefined &&
    values.execution !== 'direct' &&
    values.execution !== 'gemini_batch' &&
    values.execution !== 'flex'
  ) {
    throw new UsageError('--execution takes "direct" (each document a live call) or "gemini_batch" (Gemini Batch Mode, half price)');
  }
  if (values.endpoint !== 'chat' && values.endpoint !== 'responses') {
    throw new UsageError('--endpoint takes "chat" (chat completions, the default) or "responses" (the Responses API)');
  }
  // Checked before any upload: a refusal after them would waste them.
  try {
    windowSeconds(values['completion-window']);
  } catch (err) {
    throw new UsageError(`--completion-window: ${(err as Error).message}`);
  }
  // The SDK and the uploader load only for submit: `status` starts without them.
  const [{ connect }, { submit }] = await Promise.all([import('./connect.js'), import('./submit.js')]);
  const { client } = connect({ baseUrl: values['base-url'], apiKey: values['api-key'] });
  return submit(client, {
    paths: positionals,
    prompt: values.prompt,
    model: values.model,
    storage: values.storage,
    out: values.out,
    window: values['completion-window'],
    execution: values.execution,
    endpoint: values.endpoint,
  });
}

/** Runs a client command; answers the exit code. */
export async function runClient(command: string, args: string[]): Promise<number> {
  try {
    return command === 'submit' ? await submitCommand(args) : await status(args);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ferry ${command}: ${(err as Error).message}\n`);
      return 2;
    }
    // The SDK's messages, and status's, begin with the HTTP status.
    const detail = (err as Error)?.message ?? String(err);
    process.stderr.write(`ferry ${command}: ${detail}\n`);
    return 1;
  }
}
