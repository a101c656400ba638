/** `ferry submit` and `ferry status`: the command-line client for pipelines. */
import { parseArgs } from 'node:util';
import { APIError } from 'openai';
import { connect, UsageError } from './connect.js';
import { batchLine } from './progress.js';
import { submit } from './submit.js';
import { windowSeconds } from '../openai/batches.js';

const COMMON = {
  'base-url': { type: 'string' },
  'api-key': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function status(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...COMMON, json: { type: 'boolean' } } });
  if (values.help || positionals.length !== 1) throw new UsageError('usage: npx ferry status <batch_id> [--json]');
  const { client } = connect({ baseUrl: values['base-url'], apiKey: values['api-key'] });
  const b = await client.batches.retrieve(positionals[0]);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(b, null, 2)}\n`);
    return 0;
  }
  const at = (t?: number | null) => (t ? new Date(t * 1000).toISOString() : '-');
  const lines = [
    batchLine(b as never),
    `created ${at(b.created_at)}, expires ${at(b.expires_at)}, ended ${at(b.completed_at ?? b.failed_at ?? b.expired_at ?? b.cancelled_at)}`,
    `input ${b.input_file_id}, output ${b.output_file_id ?? '-'}, errors ${b.error_file_id ?? '-'}`,
    ...(b.errors?.data ?? []).map((e) => `error: ${e.message}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
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
    // The SDK's message already begins with the status.
    const detail = err instanceof APIError ? err.message : ((err as Error)?.message ?? String(err));
    process.stderr.write(`ferry ${command}: ${detail}\n`);
    return 1;
  }
}
