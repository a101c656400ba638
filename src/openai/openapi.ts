/**
 * Ferry's API as an OpenAPI 3.1 document: every route it serves, OpenAI's paths and shapes with
 * Ferry's extensions (`target_storage`, `url`, `execution`, `/v1/jobs`, `Prefer: respond-async`,
 * `Idempotency-Key`, `?wait=` long-polls), the objects it answers, and the one error shape of
 * every 4xx and 5xx. The schemas follow what the renderers beside this file answer (files.ts,
 * jobs.ts, batches.ts, …); `GET /openapi.json` serves it, and test/openapi.test.ts holds the
 * service's real answers to it.
 *
 * Objects Ferry renders are closed (`additionalProperties: false`) and list every field they always
 * carry as required, so a field added to an answer or dropped from it is a difference the test sees.
 */
import type { BatchExecution } from '../core/config.js';
import type { BatchStatus } from '../core/records/batches.js';
import type { FileStatus, ProviderState, Storage } from '../core/records/files.js';
import type { JobStatus, JobType } from '../core/records/jobs.js';
import type { UploadStatus } from '../core/records/uploads.js';
import type { WebhookDelivery, WebhookEndpoint } from '../core/records/webhooks.js';
import { MAX_EMBEDDING_INPUTS } from './embeddings.js';
import { EVENT_TYPES } from './events.js';
import { EXPIRES_AFTER_MAX_SECONDS, EXPIRES_AFTER_MIN_SECONDS, PURPOSES, STORAGES } from './files.js';
import type { ResponseStatus } from './response-object.js';
import { PART_MAX_BYTES, UPLOAD_MAX_BYTES } from './uploads.js';

type Json = Record<string, unknown>;

/** Ferry's field on the objects the admin key reads: whose they are (a tenant's key never sees it). */
const OWNER = { tenant: { type: 'string', description: "Ferry's, for the admin key only: the tenant the object belongs to." } };

// ---------------------------------------------------------------------------
// Building blocks

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const str = (description?: string, extra: Json = {}) => ({ type: 'string', ...(description ? { description } : {}), ...extra });
const int = (description?: string, extra: Json = {}) => ({ type: 'integer', ...(description ? { description } : {}), ...extra });
const num = (description?: string) => ({ type: 'number', ...(description ? { description } : {}) });
const bool = (description?: string) => ({ type: 'boolean', ...(description ? { description } : {}) });
const constant = (value: string | boolean | null) => ({ const: value });
const oneOfValues = (values: readonly string[], description?: string) => ({
  type: 'string',
  enum: [...values],
  ...(description ? { description } : {}),
});
const arr = (items: Json, description?: string, extra: Json = {}) => ({
  type: 'array',
  items,
  ...(description ? { description } : {}),
  ...extra,
});
const time = (description = 'Unix time, in seconds.') => int(description);
const stringMap = (description: string) => ({ type: 'object', additionalProperties: { type: 'string' }, description });
const binary = (description: string) => str(description, { format: 'binary', contentMediaType: 'application/octet-stream' });

/** The schema, or null: a type list for a typed schema, a choice for a reference or a composition. */
function orNull(schema: Json): Json {
  if (typeof schema.type === 'string' && !('const' in schema)) {
    return { ...schema, type: [schema.type, 'null'], ...(Array.isArray(schema.enum) ? { enum: [...schema.enum, null] } : {}) };
  }
  return { anyOf: [schema, { type: 'null' }] };
}

/**
 * An object whose properties are all required unless named in `optional`; closed unless `open`
 * (a body Ferry answers carries exactly these fields, a request body takes no others).
 */
function obj(properties: Record<string, Json>, opts: { optional?: string[]; open?: boolean; description?: string } = {}): Json {
  const required = Object.keys(properties).filter((k) => !opts.optional?.includes(k));
  return {
    type: 'object',
    ...(opts.description ? { description: opts.description } : {}),
    properties,
    ...(required.length ? { required } : {}),
    ...(opts.open ? {} : { additionalProperties: false }),
  };
}

/** A request body's object: every property optional but those named, no others taken. */
const requestObj = (properties: Record<string, Json>, required: string[], description?: string) =>
  obj(properties, { optional: Object.keys(properties).filter((k) => !required.includes(k)), description });

/**
 * An object inside a request (a message, a part, a tool): the properties named are required, others
 * are taken and not used (a message echoed back from an answer, with its `refusal`, is taken as it is).
 */
const part = (properties: Record<string, Json>, required: string[] = Object.keys(properties)) =>
  obj(properties, { optional: Object.keys(properties).filter((k) => !required.includes(k)), open: true });

/** OpenAI's list envelope around `item`. */
const listPage = (item: string, description: string) =>
  obj(
    {
      object: constant('list'),
      data: arr(ref(item)),
      first_id: orNull(str('The id of the first object of this page.')),
      last_id: orNull(str('The id of the last object of this page: the next page starts `after` it.')),
      has_more: bool('Whether more objects follow this page.'),
    },
    { description },
  );

/** Every enum value of a union type, checked by the compiler to name each one. */
const valuesOf = <T extends string>(all: Record<T, true>) => Object.keys(all) as T[];

const JOB_STATUSES = valuesOf<JobStatus>({
  queued: true,
  waiting_for_files: true,
  waiting_for_quota: true,
  running: true,
  succeeded: true,
  failed: true,
  cancelled: true,
});
const JOB_TYPES = valuesOf<JobType>({ 'chat.completion': true, response: true, embedding: true });
const FILE_STATUSES = valuesOf<FileStatus>({ uploaded: true, processed: true, error: true });
const PROVIDER_STATES = valuesOf<ProviderState>({
  queued: true,
  uploading: true,
  processing: true,
  active: true,
  failed: true,
  stored: true,
});
const FILE_STORAGES = valuesOf<Storage>({ gemini: true, azure_storage: true, local: true });
const BATCH_STATUSES = valuesOf<BatchStatus>({
  validating: true,
  failed: true,
  in_progress: true,
  finalizing: true,
  completed: true,
  expired: true,
  cancelling: true,
  cancelled: true,
});
const EXECUTIONS = valuesOf<BatchExecution>({ direct: true, gemini_batch: true, flex: true });
const UPLOAD_STATUSES = valuesOf<UploadStatus>({ pending: true, completed: true, cancelled: true, expired: true });
const RESPONSE_STATUSES = valuesOf<ResponseStatus>({
  queued: true,
  in_progress: true,
  completed: true,
  incomplete: true,
  failed: true,
  cancelled: true,
});
const ENDPOINT_STATUSES = valuesOf<WebhookEndpoint['status']>({ enabled: true, disabled: true });
const DELIVERY_STATUSES = valuesOf<WebhookDelivery['status']>({ pending: true, succeeded: true, failed: true });
const SERVICE_TIERS_ASKED = ['auto', 'default', 'flex', 'priority'];
const SERVICE_TIERS_BILLED = ['default', 'flex', 'priority', 'batch'];
const BATCH_ENDPOINTS = ['/v1/chat/completions', '/v1/responses', '/v1/embeddings'];
const MODEL_NAME = str('A Gemini model id, as `GET /v1/models` lists it, e.g. `gemini-2.0-flash`.', { pattern: '^(models/)?gemini-' });

// ---------------------------------------------------------------------------
// Schemas: errors, files, uploads

const errorSchemas = {
  ErrorObject: obj(
    {
      message: str('What went wrong, and what to change.'),
      type: str(
        'The kind of error: `invalid_request_error`, `authentication_error`, `insufficient_quota`, `server_error`, `upstream_error`.',
      ),
      param: orNull(str('The field, parameter or header to change, when one is at fault.')),
      code: orNull(str('A code more precise than the type, e.g. `not_found`, `model_not_found`, `idempotency_in_progress`.')),
    },
    { description: "The error, as OpenAI's SDKs read it." },
  ),
  Error: obj({ error: ref('ErrorObject') }, { description: 'The body of every 4xx and 5xx answer of the API.' }),
};

const expiresAfter = (what: string) =>
  obj(
    {
      anchor: constant('created_at'),
      seconds: int(`Seconds after creation ${what} is deleted.`, {
        minimum: EXPIRES_AFTER_MIN_SECONDS,
        maximum: EXPIRES_AFTER_MAX_SECONDS,
      }),
    },
    { description: `When ${what} is deleted everywhere; without it the service's retention applies.` },
  );

/** The fields a file can be created with, besides its bytes (`file`) or where it is (`url`). */
const fileFields = {
  purpose: oneOfValues(PURPOSES, '`batch` files stay with Ferry (batch input); the others go to the model.'),
  target_storage: oneOfValues(
    STORAGES,
    "Ferry's: where the file is kept, Gemini's file store (48 h) or the Azure container. Also taken as a query parameter.",
  ),
  target_model_names: arr(
    str(),
    "Ferry's: the models the file is meant for. In a form: repeated parts (named `target_model_names` or `target_model_names[]`), or one comma-separated.",
  ),
  display_name: str("Ferry's: the name shown for the file (default: its filename)."),
  mime_type: str("Ferry's: the media type, when the bytes and name do not tell it."),
  webhook_url: str("Ferry's: also send this file's events here (needs a registered webhook endpoint, whose secret signs them).", {
    format: 'uri',
  }),
};

const fileSchemas = {
  File: obj(
    {
      id: str(undefined, { pattern: '^file-' }),
      object: constant('file'),
      bytes: int('Its size, in bytes (0 until a file named by URL is fetched).'),
      created_at: time(),
      expires_at: time('When the file is deleted everywhere.'),
      filename: str(),
      purpose: oneOfValues([...PURPOSES, 'batch_output'], '`batch_output`: the output and error files of a batch.'),
      status: oneOfValues(FILE_STATUSES, '`uploaded` until it reaches its storage, then `processed`; `error` with `status_details`.'),
      status_details: orNull(str('Why the file failed.')),
      storage: oneOfValues(FILE_STORAGES, "Ferry's: where the file is kept (`local`: batch input and output, kept by Ferry)."),
      provider_state: oneOfValues(PROVIDER_STATES, "Ferry's: where its upload to the storage stands."),
      bytes_uploaded: int("Ferry's: bytes sent to the storage so far."),
      mime_type: str("Ferry's: the media type the file goes to Gemini with."),
      sha256: str("Ferry's: the hex SHA-256 of the bytes (empty for a file named by URL)."),
      target_model_names: arr(str()),
      provider_file: orNull(str("Ferry's: the Gemini file's name, `files/…`.")),
      uri: orNull(str("Ferry's: the Gemini file's URI, the blob URL (Azure), or the URL Gemini reads.")),
      provider_expires_at: orNull(time("Ferry's: when Gemini's copy expires.")),
      content_expires_at: orNull(time("Ferry's: until when `GET /v1/files/{file_id}/content` has the bytes.")),
      source_url: orNull(str("Ferry's: the URL the file was named by (`url`), if it was.")),
      ...OWNER,
    },
    { description: "OpenAI's file object, with Ferry's fields beside.", optional: ['tenant'] },
  ),
  FileDeleted: obj({ id: str(), object: constant('file'), deleted: constant(true) }),
  FileUpload: {
    ...requestObj(
      {
        file: binary('The file, as a part with a filename.'),
        url: str("Ferry's: instead of `file`, where the file is: an https or http URL, or `gs://bucket/object`."),
        ...fileFields,
        'expires_after[anchor]': constant('created_at'),
        'expires_after[seconds]': int('`expires_after` in a form: seconds after creation the file is deleted.', {
          minimum: EXPIRES_AFTER_MIN_SECONDS,
          maximum: EXPIRES_AFTER_MAX_SECONDS,
        }),
      },
      ['purpose'],
      'A multipart form: the file and its fields. Any other field is a 400 naming it.',
    ),
    anyOf: [{ required: ['file'] }, { required: ['url'] }],
  },
  FileByUrl: requestObj(
    {
      url: str(
        "Where the file is: an https or http URL, or `gs://bucket/object`. Nothing is uploaded; the service's worker registers or fetches it.",
      ),
      ...fileFields,
      expires_after: expiresAfter('the file'),
    },
    ['purpose', 'url'],
    "Ferry's: a file named by where it already is, sent as JSON.",
  ),
};

const uploadSchemas = {
  Upload: obj(
    {
      id: str(undefined, { pattern: '^upload_' }),
      object: constant('upload'),
      bytes: int(),
      created_at: time(),
      filename: str(),
      purpose: oneOfValues(PURPOSES),
      status: oneOfValues(UPLOAD_STATUSES),
      expires_at: time('An upload not completed by then expires, its parts deleted.'),
      file: orNull(ref('File')),
    },
    { description: "OpenAI's Upload object: a file sent in parts; `file` once completed." },
  ),
  UploadPart: obj({ id: str(), object: constant('upload.part'), created_at: time(), upload_id: str() }),
  UploadCreate: requestObj(
    {
      filename: str(),
      purpose: oneOfValues(PURPOSES),
      bytes: int('The whole file size.', { minimum: 1, maximum: UPLOAD_MAX_BYTES }),
      mime_type: str(),
      expires_after: expiresAfter('the file'),
      target_storage: fileFields.target_storage,
      target_model_names: fileFields.target_model_names,
    },
    ['filename', 'purpose', 'bytes', 'mime_type'],
  ),
  UploadPartForm: requestObj({ data: binary(`The part's bytes, at most ${PART_MAX_BYTES}.`) }, ['data']),
  UploadComplete: requestObj(
    {
      part_ids: arr(str(), "The parts' ids, in the order of the file.", { minItems: 1 }),
      md5: str("The hex MD5 of the whole file, checked against the parts' bytes.", { pattern: '^([0-9a-fA-F]{32})?$' }),
    },
    ['part_ids'],
  ),
};

// ---------------------------------------------------------------------------
// Schemas: chat completions

const textPart = part({ type: constant('text'), text: str() });
const chatContent = (part: Json) => ({ anyOf: [str(), arr(part, undefined, { minItems: 1 })] });
const functionCall = obj({ name: str(), arguments: str('The arguments, as a JSON object in a string.') });
const toolCall = obj({ id: str(), type: constant('function'), function: functionCall });
const toolCallGiven = part({ id: str(), type: constant('function'), function: part({ name: str(), arguments: str() }) });

const chatRequestSchemas = {
  ChatContentPart: {
    description:
      'A part of a user message: text, a file (uploaded, by `file_id`; or inline, a data URL), an image (data or http(s) URL) or audio.',
    oneOf: [
      textPart,
      part({
        type: constant('file'),
        file: part({ file_id: str(), file_data: str('A base64 data URL.'), filename: str() }, []),
      }),
      part({ type: constant('image_url'), image_url: part({ url: str('A data URL or an http(s) URL.'), detail: str() }, ['url']) }),
      part({ type: constant('input_audio'), input_audio: part({ data: str('Base64 audio.'), format: oneOfValues(['wav', 'mp3']) }) }),
    ],
  },
  ChatMessage: {
    description:
      "`system` and `developer` messages become Gemini's system instruction; `assistant` turns may carry `tool_calls`, which `tool` messages answer.",
    oneOf: [
      part({ role: oneOfValues(['system', 'developer']), content: chatContent(textPart) }),
      part({ role: constant('user'), content: chatContent(ref('ChatContentPart')) }),
      part({ role: constant('assistant'), content: orNull(chatContent(textPart)), tool_calls: arr(toolCallGiven) }, ['role']),
      part({ role: constant('tool'), tool_call_id: str(), content: chatContent(textPart) }),
    ],
  },
  ChatCompletionRequest: requestObj(
    {
      model: MODEL_NAME,
      messages: arr(ref('ChatMessage'), undefined, { minItems: 1 }),
      temperature: orNull({ type: 'number', minimum: 0, maximum: 2 }),
      top_p: orNull({ type: 'number', minimum: 0, maximum: 1 }),
      max_tokens: orNull(int(undefined, { minimum: 1 })),
      max_completion_tokens: orNull(int(undefined, { minimum: 1 })),
      stop: orNull({ anyOf: [str(), arr(str(), undefined, { maxItems: 5 })] }),
      n: orNull(int(undefined, { minimum: 1, maximum: 8 })),
      seed: orNull(int()),
      presence_penalty: orNull({ type: 'number', minimum: -2, maximum: 2 }),
      frequency_penalty: orNull({ type: 'number', minimum: -2, maximum: 2 }),
      response_format: orNull({
        oneOf: [
          part({ type: oneOfValues(['text', 'json_object']) }),
          part({
            type: constant('json_schema'),
            json_schema: part({ name: str(), schema: { type: 'object' }, strict: bool(), description: str() }, ['schema']),
          }),
        ],
      }),
      tools: orNull(
        arr(
          part({
            type: constant('function'),
            function: part({ name: str(), description: str(), parameters: { type: 'object' } }, ['name']),
          }),
        ),
      ),
      tool_choice: orNull({
        anyOf: [oneOfValues(['none', 'auto', 'required']), part({ type: constant('function'), function: part({ name: str() }) })],
      }),
      stream: bool('Answer Server-Sent Events (`chat.completion.chunk`, then `data: [DONE]`).'),
      stream_options: orNull(requestObj({ include_usage: bool('A last chunk with `usage`.') }, [])),
      metadata: orNull(stringMap('Up to 16 string values, kept on the job.')),
      user: str(),
      webhook_url: str("Ferry's: also send this job's events here (needs a registered webhook endpoint).", { format: 'uri' }),
      service_tier: orNull(
        oneOfValues(
          SERVICE_TIERS_ASKED,
          "Gemini's tier: `flex` (half price, best effort) or `priority`; `auto` and `default` the standard one.",
        ),
      ),
    },
    ['model', 'messages'],
    "OpenAI's chat completion request, as Ferry takes it: any other field is a 400 naming it.",
  ),
};

const chatUsage = obj(
  {
    prompt_tokens: int(),
    completion_tokens: int(),
    total_tokens: int(),
    prompt_tokens_details: obj({ cached_tokens: int('Read from a context cache.') }),
  },
  { optional: ['prompt_tokens_details'] },
);
const FINISH_REASONS = ['stop', 'length', 'content_filter', 'tool_calls'];

const chatAnswerSchemas = {
  ChatUsage: chatUsage,
  ChatCompletion: obj(
    {
      id: str(undefined, { pattern: '^chatcmpl-' }),
      object: constant('chat.completion'),
      created: time(),
      model: str(),
      choices: arr(
        obj({
          index: int(),
          message: obj(
            { role: constant('assistant'), content: orNull(str()), refusal: constant(null), tool_calls: arr(toolCall) },
            { optional: ['tool_calls'] },
          ),
          finish_reason: oneOfValues(FINISH_REASONS),
          logprobs: constant(null),
        }),
      ),
      usage: ref('ChatUsage'),
      system_fingerprint: orNull(str("Gemini's model version.")),
      service_tier: oneOfValues(SERVICE_TIERS_BILLED, 'The tier the call ran at.'),
    },
    { optional: ['usage'], description: "OpenAI's chat completion." },
  ),
  ChatCompletionChunk: obj(
    {
      id: str(),
      object: constant('chat.completion.chunk'),
      created: time(),
      model: str(),
      choices: arr(
        obj({
          index: int(),
          delta: obj(
            {
              role: constant('assistant'),
              content: str(),
              tool_calls: arr(obj({ index: int(), id: str(), type: constant('function'), function: functionCall })),
            },
            { optional: ['role', 'content', 'tool_calls'] },
          ),
          finish_reason: orNull(oneOfValues(FINISH_REASONS)),
          logprobs: constant(null),
        }),
      ),
      usage: orNull(ref('ChatUsage')),
    },
    {
      optional: ['usage'],
      description: 'One event of a streamed completion; with `stream_options.include_usage`, a last chunk with no choices carries `usage`.',
    },
  ),
  ChatStreamData: {
    description:
      'The `data` of one event of a streamed completion (before the last, `data: [DONE]`): a chunk, or the error that ended the stream.',
    anyOf: [ref('ChatCompletionChunk'), ref('Error')],
  },
  StreamedChatResult: obj(
    { streamed: constant(true), usage: orNull(ref('ChatUsage')) },
    { description: 'The result a streamed completion keeps: its chunks went to the stream.' },
  ),
};

// ---------------------------------------------------------------------------
// Schemas: responses

const outputText = obj({ type: constant('output_text'), text: str(), annotations: arr({}), logprobs: arr({}) });
const ITEM_STATUSES = ['in_progress', 'completed'];
const callFields = { call_id: str(), name: str(), arguments: str('The arguments, as a JSON object in a string.') };
const inputText = obj({ type: oneOfValues(['input_text', 'output_text']), text: str() });
const functionTool = part(
  {
    type: constant('function'),
    name: str(undefined, { pattern: '^[\\w.-]{1,64}$' }),
    description: orNull(str()),
    parameters: orNull({ type: 'object' }),
    strict: orNull(bool()),
  },
  ['type', 'name'],
);
// Tools, tool choice and text format are answered as the request gave them: open on both sides.
const responseToolChoice = { anyOf: [oneOfValues(['none', 'auto', 'required']), part({ type: constant('function'), name: str() })] };
const textFormat = {
  oneOf: [
    part({ type: oneOfValues(['text', 'json_object']) }),
    part({ type: constant('json_schema'), name: str(), schema: { type: 'object' }, strict: orNull(bool()), description: str() }, [
      'type',
      'schema',
    ]),
  ],
};

const responseRequestSchemas = {
  ResponseInputContent: {
    description:
      'A part of an input message: text, an image (URL, data URL or `file_id`) or a file (`file_id`, `file_url`, or `file_data` with `filename`).',
    oneOf: [
      part({ type: oneOfValues(['input_text', 'output_text']), text: str() }),
      part({ type: constant('input_image'), image_url: orNull(str()), file_id: orNull(str()), detail: str() }, ['type']),
      part({ type: constant('input_file'), file_id: orNull(str()), file_url: str(), file_data: str(), filename: str() }, ['type']),
    ],
  },
  ResponseInputItemParam: {
    description: 'An item of the input: a message (the default type), a function call, or its output.',
    oneOf: [
      part(
        {
          type: constant('message'),
          id: str(),
          role: oneOfValues(['user', 'assistant', 'system', 'developer']),
          content: { anyOf: [str(), arr(ref('ResponseInputContent'), undefined, { minItems: 1 })] },
        },
        ['role', 'content'],
      ),
      part({ type: constant('function_call'), id: str(), ...callFields }, ['type', 'call_id', 'name', 'arguments']),
      part({ type: constant('function_call_output'), id: str(), call_id: str(), output: str() }, ['type', 'call_id', 'output']),
    ],
  },
  ResponseRequest: {
    ...requestObj(
      {
        model: MODEL_NAME,
        input: { anyOf: [str(), arr(ref('ResponseInputItemParam'))], description: 'A string (one user message) or a list of items.' },
        instructions: orNull(str("Gemini's system instruction; not carried over by `previous_response_id`.")),
        text: orNull(requestObj({ format: textFormat, verbosity: orNull(constant('medium')) }, [])),
        tools: orNull(arr(functionTool, 'Function tools only: hosted tools are a 400.')),
        tool_choice: orNull(responseToolChoice),
        max_output_tokens: orNull(int(undefined, { minimum: 1 })),
        temperature: orNull({ type: 'number', minimum: 0, maximum: 2 }),
        top_p: orNull({ type: 'number', minimum: 0, maximum: 1 }),
        reasoning: orNull(
          requestObj(
            {
              effort: orNull(oneOfValues(['none', 'minimal', 'low', 'medium', 'high'], "Gemini's thinking budget.")),
              summary: { type: 'null' },
            },
            [],
          ),
        ),
        metadata: orNull(stringMap('Up to 16 string values.')),
        service_tier: orNull(oneOfValues(SERVICE_TIERS_ASKED)),
        store: orNull(bool('`false`: the response cannot be retrieved once it has ended.')),
        background: orNull(bool('Answer at once with the `queued` response; a webhook event says when it has ended.')),
        stream: orNull(bool('Answer the Responses event stream (Server-Sent Events).')),
        stream_options: orNull(requestObj({ include_obfuscation: bool('Accepted, without effect.') }, [])),
        previous_response_id: orNull(str('Continue from this completed response.')),
        include: orNull(arr(str(), 'Nothing can be included through Gemini: only an empty list.', { maxItems: 0 })),
        truncation: orNull(constant('disabled')),
        parallel_tool_calls: orNull(bool('`false` keeps the first call.')),
        user: str(),
        safety_identifier: str(),
        prompt_cache_key: str(),
      },
      ['model'],
      "OpenAI's Responses request, as Ferry takes it: any other field is a 400 naming it.",
    ),
    anyOf: [{ required: ['input'] }, { required: ['previous_response_id'] }],
  },
};

const responseAnswerSchemas = {
  ResponseOutputItem: {
    oneOf: [
      obj({
        type: constant('message'),
        id: str(),
        status: oneOfValues(ITEM_STATUSES),
        role: constant('assistant'),
        content: arr(outputText),
      }),
      obj({ type: constant('function_call'), id: str(), ...callFields, status: oneOfValues(ITEM_STATUSES) }),
    ],
  },
  ResponseUsage: obj({
    input_tokens: int(),
    input_tokens_details: obj({ cached_tokens: int() }),
    output_tokens: int(),
    output_tokens_details: obj({ reasoning_tokens: int("Gemini's thinking tokens.") }),
    total_tokens: int(),
  }),
  Response: obj(
    {
      id: str(undefined, { pattern: '^resp_' }),
      object: constant('response'),
      created_at: time(),
      status: oneOfValues(RESPONSE_STATUSES),
      background: bool(),
      error: orNull(obj({ code: str(), message: str() })),
      incomplete_details: orNull(obj({ reason: oneOfValues(['max_output_tokens', 'content_filter']) })),
      instructions: orNull(str()),
      max_output_tokens: orNull(int()),
      max_tool_calls: constant(null),
      model: str(),
      output: arr(ref('ResponseOutputItem')),
      parallel_tool_calls: bool(),
      previous_response_id: orNull(str()),
      reasoning: obj({ effort: orNull(str()), summary: constant(null) }),
      service_tier: oneOfValues(SERVICE_TIERS_BILLED),
      store: bool(),
      temperature: num(),
      text: obj({ format: textFormat, verbosity: constant('medium') }),
      tool_choice: responseToolChoice,
      tools: arr(functionTool),
      top_p: num(),
      truncation: constant('disabled'),
      usage: orNull(ref('ResponseUsage')),
      user: orNull(str()),
      safety_identifier: orNull(str()),
      prompt_cache_key: orNull(str()),
      metadata: stringMap("The request's metadata."),
    },
    { description: "OpenAI's response object. Its id `resp_X` is the job `job-X`." },
  ),
  ResponseDeleted: obj({ id: str(), object: constant('response'), deleted: constant(true) }),
  ResponseInputItem: {
    description: 'An item of the input, as `input_items` lists it.',
    oneOf: [
      obj({
        type: constant('message'),
        id: str(),
        role: oneOfValues(['user', 'assistant', 'system', 'developer']),
        content: arr({
          oneOf: [
            inputText,
            obj({ type: constant('input_image'), image_url: str(), file_id: str() }, { optional: ['image_url', 'file_id'] }),
            obj(
              { type: constant('input_file'), file_id: str(), file_url: str(), file_data: str(), filename: str() },
              { optional: ['file_id', 'file_url', 'file_data', 'filename'] },
            ),
          ],
        }),
        status: constant('completed'),
      }),
      obj({ type: constant('function_call'), id: str(), ...callFields, status: constant('completed') }),
      obj({ type: constant('function_call_output'), id: str(), call_id: str(), output: str(), status: constant('completed') }),
    ],
  },
  ResponseStreamEvent: obj(
    {
      type: oneOfValues([
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.output_item.done',
        'response.content_part.added',
        'response.content_part.done',
        'response.output_text.delta',
        'response.output_text.done',
        'response.function_call_arguments.delta',
        'response.function_call_arguments.done',
        'response.completed',
        'response.incomplete',
        'response.failed',
        'error',
      ]),
      sequence_number: int('Numbered from 0; resume after one with `GET /v1/responses/{response_id}?stream=true&starting_after=N`.'),
      response: ref('Response'),
      output_index: int(),
      content_index: int(),
      item_id: str(),
      item: ref('ResponseOutputItem'),
      part: outputText,
      delta: str(),
      text: str(),
      logprobs: arr({}),
      name: str(),
      arguments: str(),
      code: str(),
      message: str(),
      param: { type: 'null' },
    },
    {
      optional: [
        'response',
        'output_index',
        'content_index',
        'item_id',
        'item',
        'part',
        'delta',
        'text',
        'logprobs',
        'name',
        'arguments',
        'code',
        'message',
        'param',
      ],
      description: 'The `data` of one event of the Responses event stream; the SSE `event:` line names its `type`.',
    },
  ),
};

// ---------------------------------------------------------------------------
// Schemas: embeddings, jobs, batches, models

const embeddingAndJobSchemas = {
  EmbeddingRequest: requestObj(
    {
      model: str('A Gemini embedding model, e.g. `gemini-embedding-001`.'),
      input: {
        anyOf: [
          str(undefined, { minLength: 1 }),
          arr(str(undefined, { minLength: 1 }), undefined, { minItems: 1, maxItems: MAX_EMBEDDING_INPUTS }),
        ],
        description: 'Text, or a list of texts (token arrays are a 400: Gemini embeds text).',
      },
      dimensions: orNull(int("Gemini's output dimensionality.", { minimum: 1 })),
      encoding_format: orNull(oneOfValues(['float', 'base64'])),
      user: str(),
    },
    ['model', 'input'],
  ),
  EmbeddingList: obj({
    object: constant('list'),
    data: arr(
      obj({
        object: constant('embedding'),
        index: int(),
        embedding: { anyOf: [arr(num()), str('Little-endian float32s, base64 (`encoding_format: "base64"`).')] },
      }),
    ),
    model: str(),
    usage: obj({ prompt_tokens: int('Estimated: Gemini does not count embedding tokens.'), total_tokens: int() }),
  }),
  Job: obj(
    {
      id: str(undefined, { pattern: '^job-' }),
      object: constant('job'),
      type: oneOfValues(JOB_TYPES),
      status: oneOfValues(JOB_STATUSES),
      model: str(),
      stream: bool(),
      attempts: int('Tries so far, those Gemini sent back for quota included.'),
      created_at: time(),
      started_at: orNull(time()),
      finished_at: orNull(time()),
      file_ids: arr(str()),
      metadata: orNull(stringMap("The request's metadata.")),
      result: {
        description:
          'Once succeeded: what its endpoint answers (a chat completion, a response, an embeddings list); for a streamed completion, its usage.',
        anyOf: [ref('ChatCompletion'), ref('StreamedChatResult'), ref('Response'), ref('EmbeddingList'), { type: 'null' }],
      },
      error: orNull(ref('ErrorObject')),
      batch_id: orNull(str('The batch whose line this job is.')),
      custom_id: orNull(str("The batch line's `custom_id`.")),
      webhook_url: orNull(str()),
      request: {
        type: 'object',
        description: 'Only when one job is retrieved: the request as it was accepted (the body of its endpoint).',
      },
      ...OWNER,
    },
    {
      description: "Ferry's job: a chat completion, response or embeddings request, and where it stands.",
      optional: ['request', 'tenant'],
    },
  ),
};

const tokenUsage = obj({
  input_tokens: int(),
  output_tokens: int(),
  total_tokens: int(),
  input_tokens_details: obj({ cached_tokens: int() }),
  output_tokens_details: obj({ reasoning_tokens: int() }),
});
const batchTimes = ['in_progress_at', 'finalizing_at', 'completed_at', 'failed_at', 'expired_at', 'cancelling_at', 'cancelled_at'];

const batchAndModelSchemas = {
  Batch: obj(
    {
      id: str(undefined, { pattern: '^batch_' }),
      object: constant('batch'),
      endpoint: oneOfValues(BATCH_ENDPOINTS),
      errors: orNull(
        obj({
          object: constant('list'),
          data: arr(obj({ code: str(), message: str(), param: orNull(str()), line: orNull(int('The input line it concerns.')) })),
        }),
      ),
      input_file_id: str(),
      completion_window: str(),
      status: oneOfValues(BATCH_STATUSES),
      output_file_id: orNull(str()),
      error_file_id: orNull(str()),
      created_at: time(),
      expires_at: time('When the completion window ends.'),
      ...Object.fromEntries(batchTimes.map((t) => [t, orNull(time())])),
      request_counts: obj(
        { total: int(), completed: int(), failed: int() },
        { description: 'Live while it runs; final once it has ended.' },
      ),
      metadata: orNull(stringMap('Up to 16 string values.')),
      output_expires_after: expiresAfter('the output and error files'),
      usage: orNull(tokenUsage),
      cost: obj({ value: num(), currency: constant('usd') }, { description: "Ferry's: what the batch has cost so far." }),
      execution: oneOfValues(EXECUTIONS, "Ferry's: how the lines run (`direct`, Gemini Batch Mode, or Gemini's Flex tier)."),
      gemini_batches: arr(
        obj({ model: str(), name: orNull(str('`batches/…`, once made.')), state: str() }),
        "Ferry's, on Gemini Batch Mode: one Gemini batch per model.",
      ),
      ...OWNER,
    },
    {
      optional: ['output_expires_after', 'cost', 'gemini_batches', 'tenant'],
      description: "OpenAI's batch object, with Ferry's fields beside.",
    },
  ),
  BatchCreate: requestObj(
    {
      input_file_id: str('A file uploaded with purpose `batch`: JSONL, one request a line.'),
      endpoint: oneOfValues(BATCH_ENDPOINTS),
      completion_window: str('`24h`, or shorter (`1h`, `30m`, `90s`).', { pattern: '^\\d{1,6}[smh]$' }),
      metadata: orNull(stringMap('Up to 16 string values (keys up to 64, values up to 512 characters).')),
      execution: orNull(
        oneOfValues(
          EXECUTIONS,
          "Ferry's: `direct` (live calls), `gemini_batch` (Gemini Batch Mode, half price, slower) or `flex` (live calls at Gemini's Flex tier).",
        ),
      ),
      output_expires_after: orNull(expiresAfter('the output and error files')),
    },
    ['input_file_id', 'endpoint', 'completion_window'],
  ),
  Model: obj({
    id: str(),
    object: constant('model'),
    created: time("When Ferry read the model from Gemini's catalogue."),
    owned_by: constant('google'),
    display_name: orNull(str()),
    input_token_limit: orNull(int()),
    output_token_limit: orNull(int()),
  }),
  ModelList: obj({ object: constant('list'), data: arr(ref('Model')) }),
};

// ---------------------------------------------------------------------------
// Schemas: webhooks, usage, operations

const endpointFields = {
  id: str(undefined, { pattern: '^we-' }),
  object: constant('webhook_endpoint'),
  url: str(),
  events: orNull(arr(oneOfValues(EVENT_TYPES), 'The events it receives; null: all of them.')),
  description: orNull(str()),
  enabled: bool(),
  status: oneOfValues(ENDPOINT_STATUSES),
  created_at: time(),
  failing_since: orNull(time()),
  disabled_at: orNull(time()),
  disabled_reason: orNull(str()),
};
const secret = str('The `whsec_…` signing secret: shown here only.', { pattern: '^whsec_' });
const endpointChange = {
  url: str('A public http(s) URL.', { format: 'uri', maxLength: 2048 }),
  events: orNull(arr(oneOfValues(EVENT_TYPES), 'null: every event.', { minItems: 1 })),
  description: orNull(str(undefined, { maxLength: 500 })),
};

const webhookSchemas = {
  WebhookEndpoint: obj(
    { ...endpointFields, ...OWNER },
    { description: "Ferry's webhook endpoint: where a tenant's events go, signed (Standard Webhooks).", optional: ['tenant'] },
  ),
  WebhookEndpointWithSecret: obj(
    { ...endpointFields, secret },
    { description: 'The endpoint with its signing secret, as creating or rotating answers it.' },
  ),
  WebhookEndpointDeleted: obj({ id: str(), object: constant('webhook_endpoint'), deleted: constant(true) }),
  WebhookEndpointCreate: obj(endpointChange, { optional: ['events', 'description'], open: true }),
  WebhookEndpointChange: obj(
    { ...endpointChange, enabled: bool('`true` turns a disabled endpoint back on.') },
    { optional: ['url', 'events', 'description', 'enabled'], open: true },
  ),
  WebhookDelivery: obj(
    {
      id: str(),
      object: constant('webhook_delivery'),
      status: oneOfValues(DELIVERY_STATUSES),
      event_id: str(undefined, { pattern: '^evt_' }),
      event_type: oneOfValues(EVENT_TYPES),
      endpoint_id: orNull(str("null: sent to a request's own `webhook_url`.")),
      url: str(),
      attempts: arr(obj({ at: time(), status_code: orNull(int()), error: orNull(str()), duration_ms: int() })),
      created_at: time(),
      finished_at: orNull(time()),
      ...OWNER,
    },
    { description: "Ferry's delivery of one event to one URL, with every attempt.", optional: ['tenant'] },
  ),
  WebhookEvent: obj(
    {
      id: str('The event id, the same on every retry: deduplicate on it.', { pattern: '^evt_' }),
      object: constant('event'),
      type: oneOfValues(EVENT_TYPES),
      created_at: time(),
      data: {
        description:
          'The object as GET answers it (file, job, batch); a response event carries `{id}` only, `webhook_endpoint.disabled` the endpoint that was disabled. Over the payload limit, the object comes without `result` and with `result_omitted: true`.',
        anyOf: [
          ref('File'),
          ref('Job'),
          ref('Batch'),
          ref('WebhookEndpoint'),
          obj({ id: str(undefined, { pattern: '^resp_' }) }),
          obj({ id: str(), result_omitted: constant(true) }, { open: true }),
        ],
      },
    },
    { description: "OpenAI's event envelope, which the SDKs' `webhooks.unwrap` reads." },
  ),
};

const usageResult = (object: string, counts: Record<string, Json>) =>
  obj({ object: constant(object), ...counts, project_id: orNull(str('The tenant.')), user_id: constant(null), api_key_id: constant(null) });
const reportPage = (result: string, description: string) =>
  obj(
    {
      object: constant('page'),
      data: arr(obj({ object: constant('bucket'), start_time: time(), end_time: time(), results: arr(ref(result)) })),
      has_more: bool(),
      next_page: orNull(str('Pass as `page` for the next buckets.')),
    },
    { description },
  );

const usageSchemas = {
  CompletionsUsageResult: usageResult('organization.usage.completions.result', {
    input_tokens: int(),
    input_cached_tokens: int(),
    output_tokens: int(),
    input_audio_tokens: int(),
    output_audio_tokens: int(),
    num_model_requests: int(),
    model: orNull(str()),
    batch: orNull(bool()),
    service_tier: orNull(oneOfValues(SERVICE_TIERS_BILLED)),
  }),
  EmbeddingsUsageResult: usageResult('organization.usage.embeddings.result', {
    input_tokens: int("Ferry's count: Gemini reports none for embeddings."),
    num_model_requests: int(),
    model: orNull(str()),
  }),
  CostsResult: obj({
    object: constant('organization.costs.result'),
    amount: obj({ value: num(), currency: constant('usd') }),
    line_item: orNull(str('`<model>, input`, `…, cached input`, `…, output`, `…, cache storage` (the tier named unless standard).')),
    project_id: orNull(str('The tenant.')),
  }),
  CompletionsUsagePage: reportPage('CompletionsUsageResult', 'Usage of chat completions and responses, in buckets.'),
  EmbeddingsUsagePage: reportPage('EmbeddingsUsageResult', 'Usage of embeddings, in buckets.'),
  CostsPage: reportPage('CostsResult', 'Costs in USD, in day buckets.'),
};

const ACTIVITY_SERIES = {
  completions: 'per tenant: completions, responses and embeddings that ended (batch lines apart)',
  lines: 'per tenant: batch lines that ended',
  upload_bytes: 'per tenant: bytes sent on to Gemini or Azure',
  calls: 'per model: calls to Gemini admitted',
  quota_refusals: 'per model: calls Gemini answered 429 (the work waits and runs later)',
  retries: 'per model: calls tried again after a transient failure',
  admitted_rate: 'per model, sampled: the requests per second admitted (configured or learned)',
  queued: 'per queue, sampled: jobs waiting (queued, delayed, waiting for quota)',
  running: 'per queue, sampled: jobs running',
};

const consoleSchemas = {
  Principal: obj(
    {
      object: constant('principal'),
      tenant: str('The tenant whose records this key creates (`admin` for the admin key).'),
      admin: bool('Whether this is the admin key.'),
      tenants: arr(str(), 'The tenants this key may list: its own; for the admin key every one Ferry knows.'),
    },
    { description: "Ferry's: who the key is." },
  ),
  ActivitySeries: obj(
    {
      name: oneOfValues(
        Object.keys(ACTIVITY_SERIES),
        Object.entries(ACTIVITY_SERIES)
          .map(([k, v]) => `\`${k}\`: ${v}`)
          .join('; ') + '.',
      ),
      tenant: str('The tenant of a per-tenant series.'),
      model: str('The model of a per-model series.'),
      queue: str('The queue of a per-queue series.'),
      values: arr(orNull(num()), 'One per bucket: a count over the bucket, or a sample (null where none was taken).'),
    },
    { optional: ['tenant', 'model', 'queue'] },
  ),
  Activity: obj(
    {
      object: constant('activity'),
      bucket_width_seconds: int('10.'),
      start_time: time('The first bucket’s start.'),
      end_time: time('The last bucket’s end (the bucket under way is the last).'),
      buckets: arr(time(), "Each bucket's start."),
      series: arr(ref('ActivitySeries')),
    },
    { description: "Ferry's: the last hour's activity in 10-second buckets (counts are kept two hours)." },
  ),
};

const operationSchemas = {
  Health: obj({ status: constant('ok') }),
  Readiness: obj({
    status: oneOfValues(['ready', 'not_ready']),
    redis: bool('Redis answers.'),
    workers: bool('Workers are running.'),
  }),
};

const lists = {
  FileList: listPage('File', 'Files, newest first unless `order=asc`.'),
  JobList: listPage('Job', 'Jobs, newest first unless `order=asc`.'),
  BatchList: listPage('Batch', 'Batches, newest first unless `order=asc`.'),
  ResponseInputItemList: listPage('ResponseInputItem', "A response's input items, newest first unless `order=asc`."),
  WebhookEndpointList: listPage('WebhookEndpoint', 'Webhook endpoints.'),
  WebhookDeliveryList: listPage('WebhookDelivery', 'Webhook deliveries.'),
};

const SCHEMAS = {
  ...errorSchemas,
  ...fileSchemas,
  ...uploadSchemas,
  ...chatRequestSchemas,
  ...chatAnswerSchemas,
  ...responseRequestSchemas,
  ...responseAnswerSchemas,
  ...embeddingAndJobSchemas,
  ...batchAndModelSchemas,
  ...webhookSchemas,
  ...usageSchemas,
  ...operationSchemas,
  ...consoleSchemas,
  ...lists,
};

// ---------------------------------------------------------------------------
// Parameters, headers and responses

const header = (description: string, schema: Json = str()) => ({ description, schema });
const HEADERS = {
  'X-Request-Id': header(
    "The request's id: the client's `X-Request-Id` when well-formed, else a new one. Every log line of the request carries it.",
  ),
  Location: header('Where to poll the job: `/v1/jobs/{job_id}`.'),
  'Retry-After': header('Seconds to wait before trying again (the SDKs honour it).', int()),
  'X-Ferry-Job-Id': header("The job that runs the request (a response's `resp_X` is the job `job-X`)."),
  'Content-Disposition': header("`attachment`, with the file's name."),
  ETag: header('This version of the answer: send it back as `If-None-Match` to be answered only when it changes.'),
};
const headerRef = (name: keyof typeof HEADERS) => ({ $ref: `#/components/headers/${name}` });
const headersOf = (names: (keyof typeof HEADERS)[]) =>
  Object.fromEntries(['X-Request-Id' as const, ...names].map((n) => [n, headerRef(n)]));

/** An answer: its description, body (a schema's name, or content by media type) and headers besides `X-Request-Id`. */
function answer(description: string, body: string | Record<string, Json> | null, headers: (keyof typeof HEADERS)[] = []): Json {
  const content = body === null ? undefined : typeof body === 'string' ? { 'application/json': { schema: ref(body) } } : body;
  return { description, headers: headersOf(headers), ...(content ? { content } : {}) };
}

const ERRORS: Record<number, string> = {
  400: 'The request is malformed or a field is wrong: `param` names it.',
  401: 'No key, or a key Ferry does not know.',
  404: "No such route, or no such object for this key's tenant.",
  409: 'In conflict with where the object stands (already ended, still running), or the `Idempotency-Key` is still being processed (with `Retry-After`).',
  410: 'The bytes are no longer retained (of the file named, or of a file the request uses).',
  413: 'The body or file is larger than Ferry takes.',
  415: 'The body is not of the media type this route takes (a JSON body needs `Content-Type: application/json`), or the file is of a type Gemini cannot take.',
  422: 'The `Idempotency-Key` was used with a different request body.',
  429: "The tenant's monthly budget is spent (`insufficient_quota`): do not retry.",
  500: 'Ferry failed.',
  502: 'Gemini (or Azure) refused or failed the call.',
  503: 'Ferry cannot reach Redis right now (with `Retry-After`), or a Flex call could not be served.',
};
const errorResponse = (status: number) => answer(ERRORS[status], 'Error', status === 503 || status === 409 ? ['Retry-After'] : []);
const errorsOf = (statuses: number[]) =>
  Object.fromEntries([...new Set(statuses)].sort((a, b) => a - b).map((s) => [String(s), { $ref: `#/components/responses/Error${s}` }]));

const query = (name: string, description: string, schema: Json, required = false) => ({ name, in: 'query', description, required, schema });
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: str() });
const paramRef = (name: string) => ({ $ref: `#/components/parameters/${name}` });

const PARAMETERS = {
  Wait: query(
    'wait',
    "Ferry's long-poll: wait up to this many seconds (at most 120) for the object to reach a final status; with `If-None-Match`, for it to change at all.",
    {
      type: 'number',
      minimum: 0,
    },
  ),
  Tenant: query(
    'tenant',
    "Ferry's: the admin key's lists cover every tenant; this narrows them to one. A tenant's key may name only its own.",
    str(undefined, { maxLength: 64 }),
  ),
  IfNoneMatch: {
    name: 'If-None-Match',
    in: 'header',
    description:
      'The `ETag` of an earlier answer. With `wait`, the answer comes once it differs from that version (looked at every second), or as 304 when the wait runs out; without, an unchanged answer is 304 at once.',
    schema: str(),
  },
  WatchWait: query('wait', "Ferry's long-poll, with `If-None-Match`: wait up to this many seconds (at most 120) for a change.", {
    type: 'number',
    minimum: 0,
  }),
  After: query('after', 'An object id: the page starts after it.', str(undefined, { maxLength: 100 })),
  Order: query('order', 'By creation time.', oneOfValues(['asc', 'desc'], undefined)),
  IdempotencyKey: {
    name: 'Idempotency-Key',
    in: 'header',
    description:
      'The same key with the same body within 24 h answers the original object; with a different body, 422. Keys are per tenant.',
    schema: str(undefined, { minLength: 1, maxLength: 255 }),
  },
  Prefer: {
    name: 'Prefer',
    in: 'header',
    description: '`respond-async`: answer 202 at once with the job and `Location`, instead of waiting for the completion.',
    schema: str(undefined, { examples: ['respond-async'] }),
  },
};
const limit = (max: number, dflt: number) =>
  query('limit', 'How many objects a page holds.', int(undefined, { minimum: 1, maximum: max, default: dflt }));
const listParams = (max: number, dflt: number) => [limit(max, dflt), paramRef('After'), paramRef('Order')];
/** A list the console keeps current: the admin's tenant filter, and the conditional long-poll. */
const watchedListParams = (max: number, dflt: number) => [
  ...listParams(max, dflt),
  paramRef('Tenant'),
  paramRef('IfNoneMatch'),
  paramRef('WatchWait'),
];
/** An answer that carries its `ETag`, and the 304 of a conditional request it still matches. */
const watched = (description: string, schema: string) => ({
  200: answer(description, schema, ['ETag']),
  304: { description: 'Not modified: still the version `If-None-Match` named.', headers: headersOf(['ETag']) },
});

const jsonBody = (schema: string) => ({ required: true, content: { 'application/json': { schema: ref(schema) } } });
const SSE = (dataSchema: string, description: string) => ({
  'text/event-stream': { schema: str(description), 'x-ferry-event-data': ref(dataSchema) },
});

/** Every `/v1` operation may answer these: a missing key, a failure, Redis out of reach. */
const V1_ERRORS = [401, 500, 503];
/** A route that reads a JSON body also refuses bad JSON (400), an oversized body (413) and another media type (415). */
const JSON_ERRORS = [400, 413, 415];

interface Operation {
  id: string;
  summary: string;
  description?: string;
  parameters?: Json[];
  body?: Json;
  responses: Record<string, Json>;
  errors?: number[];
}

/** A `/v1` operation of `tag`: its answers, the errors it names and those every `/v1` operation has. */
const v1 =
  (tag: string) =>
  (o: Operation): Json => ({
    operationId: o.id,
    tags: [tag],
    summary: o.summary,
    ...(o.description ? { description: o.description } : {}),
    ...(o.parameters?.length ? { parameters: o.parameters } : {}),
    ...(o.body ? { requestBody: o.body } : {}),
    responses: { ...o.responses, ...errorsOf([...(o.errors ?? []), ...V1_ERRORS]) },
  });

// ---------------------------------------------------------------------------
// Paths

const FILE_ID = pathParam('file_id', 'The file id, `file-…`.');
const ASYNC_HEADERS: (keyof typeof HEADERS)[] = ['Location', 'Retry-After', 'X-Ferry-Job-Id'];
const accepted = (what: string) =>
  answer(`${what}: the job, to poll at \`Location\` (\`GET /v1/jobs/{job_id}?wait=…\`).`, 'Job', ASYNC_HEADERS);

function filePaths(): Json {
  const op = v1('Files');
  return {
    '/v1/files': {
      post: op({
        id: 'createFile',
        summary: 'Upload a file',
        description:
          "A multipart upload streamed to staging, then on to Gemini or Azure by a worker; or, with Ferry's `url` (in the form, or as JSON), a file where it already is. Poll `GET /v1/files/{file_id}?wait=…` until `processed`.",
        parameters: [paramRef('IdempotencyKey'), query('target_storage', "Ferry's: where the file is kept.", oneOfValues(STORAGES))],
        body: {
          required: true,
          content: { 'multipart/form-data': { schema: ref('FileUpload') }, 'application/json': { schema: ref('FileByUrl') } },
        },
        responses: { 200: answer('The file, `uploaded` (or `processed` for batch input).', 'File') },
        errors: [400, 409, 413, 415, 422],
      }),
      get: op({
        id: 'listFiles',
        summary: "List the tenant's files",
        parameters: [...watchedListParams(10_000, 10_000), query('purpose', 'Only files of this purpose.', str())],
        responses: watched('A page of files.', 'FileList'),
        errors: [400, 404],
      }),
    },
    '/v1/files/{file_id}': {
      parameters: [FILE_ID],
      get: op({
        id: 'retrieveFile',
        summary: 'Retrieve a file',
        parameters: [paramRef('Wait')],
        responses: { 200: answer('The file.', 'File') },
        errors: [400, 404],
      }),
      delete: op({
        id: 'deleteFile',
        summary: 'Delete a file',
        description: 'Cancels a pending upload, deletes the Gemini copy and the bytes (a file stored in Azure keeps its blob).',
        responses: { 200: answer('Deleted.', 'FileDeleted') },
        errors: [404],
      }),
    },
    '/v1/files/{file_id}/content': {
      parameters: [FILE_ID],
      get: op({
        id: 'downloadFileContent',
        summary: "The file's bytes",
        description: 'The original bytes, with their media type, while retained. A file named by URL is a 400 naming where its bytes are.',
        responses: { 200: answer('The bytes.', { '*/*': { schema: binary('The bytes.') } }, ['Content-Disposition']) },
        errors: [400, 404, 410],
      }),
    },
  };
}

function uploadPaths(): Json {
  const op = v1('Uploads');
  const id = pathParam('upload_id', 'The upload id, `upload_…`.');
  return {
    '/v1/uploads': {
      post: op({
        id: 'createUpload',
        summary: 'Start a file sent in parts',
        description: 'Parts of up to 64 MB, within an hour; a file Gemini cannot take (type, size) is refused here, before any part.',
        body: jsonBody('UploadCreate'),
        responses: { 200: answer('The upload, `pending`.', 'Upload') },
        errors: JSON_ERRORS,
      }),
    },
    '/v1/uploads/{upload_id}/parts': {
      parameters: [id],
      post: op({
        id: 'addUploadPart',
        summary: 'Send a part',
        body: { required: true, content: { 'multipart/form-data': { schema: ref('UploadPartForm') } } },
        responses: { 200: answer('The part.', 'UploadPart') },
        errors: [400, 404, 413],
      }),
    },
    '/v1/uploads/{upload_id}/complete': {
      parameters: [id],
      post: op({
        id: 'completeUpload',
        summary: 'Complete an upload',
        description:
          'Makes the file from the parts, in the order given (checked against `md5` when given); the file then travels as any upload does.',
        body: jsonBody('UploadComplete'),
        responses: { 200: answer('The upload, `completed`, with its `file`.', 'Upload') },
        errors: [...JSON_ERRORS, 404],
      }),
    },
    '/v1/uploads/{upload_id}/cancel': {
      parameters: [id],
      post: op({
        id: 'cancelUpload',
        summary: 'Cancel an upload',
        responses: { 200: answer('The upload, `cancelled`.', 'Upload') },
        errors: [400, 404],
      }),
    },
  };
}

function chatPaths(): Json {
  return {
    '/v1/chat/completions': {
      post: v1('Chat')({
        id: 'createChatCompletion',
        summary: 'Create a chat completion',
        description:
          'Run by a worker on Gemini. By default the request waits for the answer (up to `FERRY_SYNC_WAIT_SECONDS`), and past that answers 202 with the job. `Prefer: respond-async` answers 202 at once; `stream: true` answers Server-Sent Events. A job that failed answers its error with its status.',
        parameters: [paramRef('IdempotencyKey'), paramRef('Prefer')],
        body: jsonBody('ChatCompletionRequest'),
        responses: {
          200: answer(
            'The completion; with `stream: true`, its events.',
            {
              'application/json': { schema: ref('ChatCompletion') },
              ...SSE(
                'ChatStreamData',
                'Events `data: {chat.completion.chunk}`, then `data: [DONE]`; a stream that fails ends with `data: {"error": …}`.',
              ),
            },
            ['X-Ferry-Job-Id'],
          ),
          202: accepted('Asked with `Prefer: respond-async`, or not answered within the wait'),
        },
        errors: [...JSON_ERRORS, 404, 409, 410, 422, 429, 502],
      }),
    },
  };
}

const responseOrEvents = (description: string) =>
  answer(description, {
    'application/json': { schema: ref('Response') },
    ...SSE('ResponseStreamEvent', 'The Responses event stream: `event: <type>` and `data: {…, "sequence_number": N}`.'),
  });

function responsePaths(): Json {
  const op = v1('Responses');
  const id = pathParam('response_id', 'The response id, `resp_…`.');
  return {
    '/v1/responses': {
      post: op({
        id: 'createResponse',
        summary: 'Create a response',
        description:
          "Waits for the answer (up to `FERRY_SYNC_WAIT_SECONDS`, then the response as it stands); `background: true` answers the `queued` response at once; `stream: true` answers the event stream. A response that failed by the request's fault answers its error with its status; one that failed otherwise is answered, `failed`, with its `error`.",
        parameters: [paramRef('IdempotencyKey')],
        body: jsonBody('ResponseRequest'),
        responses: { 200: { ...responseOrEvents('The response, or its events.'), headers: headersOf(['X-Ferry-Job-Id']) } },
        errors: [...JSON_ERRORS, 404, 409, 410, 422, 429],
      }),
    },
    '/v1/responses/{response_id}': {
      parameters: [id],
      get: op({
        id: 'retrieveResponse',
        summary: 'Retrieve a response',
        parameters: [
          paramRef('Wait'),
          query('stream', "`true`: replay a streamed response's events (and follow them while it runs).", bool()),
          query('starting_after', 'With `stream=true`: only the events after this sequence number.', int(undefined, { minimum: -1 })),
        ],
        responses: { 200: responseOrEvents('The response, or its events.') },
        errors: [400, 404],
      }),
      delete: op({
        id: 'deleteResponse',
        summary: 'Delete a response',
        responses: { 200: answer('Deleted.', 'ResponseDeleted') },
        errors: [404],
      }),
    },
    '/v1/responses/{response_id}/cancel': {
      parameters: [id],
      post: op({
        id: 'cancelResponse',
        summary: 'Cancel a background response',
        responses: { 200: answer('The response, `cancelled`.', 'Response') },
        errors: [400, 404, 409],
      }),
    },
    '/v1/responses/{response_id}/input_items': {
      parameters: [id],
      get: op({
        id: 'listResponseInputItems',
        summary: "A response's input items",
        parameters: listParams(100, 20),
        responses: { 200: answer('A page of input items.', 'ResponseInputItemList') },
        errors: [400, 404],
      }),
    },
  };
}

function embeddingPaths(): Json {
  return {
    '/v1/embeddings': {
      post: v1('Embeddings')({
        id: 'createEmbeddings',
        summary: 'Embed texts',
        description: "Embedded by a worker, 100 texts a call, under the model's quota; past `FERRY_SYNC_WAIT_SECONDS`, 202 with the job.",
        parameters: [paramRef('IdempotencyKey')],
        body: jsonBody('EmbeddingRequest'),
        responses: {
          200: answer('The embeddings.', 'EmbeddingList', ['X-Ferry-Job-Id']),
          202: accepted('Not answered within the wait'),
        },
        errors: [...JSON_ERRORS, 404, 409, 422, 429, 502],
      }),
    },
  };
}

function jobPaths(): Json {
  const op = v1('Jobs');
  const id = pathParam('job_id', 'The job id, `job-…`.');
  return {
    '/v1/jobs': {
      get: op({
        id: 'listJobs',
        summary: "List the tenant's jobs",
        description: 'Chat completions, responses and embeddings requests, batch lines included.',
        parameters: [
          ...watchedListParams(1000, 20),
          query('status', 'Only jobs in this status.', oneOfValues(JOB_STATUSES)),
          query('type', 'Only jobs of this type.', oneOfValues(JOB_TYPES)),
        ],
        responses: watched('A page of jobs.', 'JobList'),
        errors: [400, 404],
      }),
    },
    '/v1/jobs/{job_id}': {
      parameters: [id],
      get: op({
        id: 'retrieveJob',
        summary: 'Retrieve a job',
        parameters: [paramRef('Wait'), paramRef('IfNoneMatch')],
        responses: watched('The job.', 'Job'),
        errors: [400, 404],
      }),
    },
    '/v1/jobs/{job_id}/cancel': {
      parameters: [id],
      post: op({
        id: 'cancelJob',
        summary: 'Cancel a job',
        description: "A queued or waiting job never runs; a running one's result is discarded; a finished job is a 409.",
        responses: { 200: answer('The job, `cancelled`.', 'Job') },
        errors: [404, 409],
      }),
    },
  };
}

function batchPaths(): Json {
  const op = v1('Batches');
  const id = pathParam('batch_id', 'The batch id, `batch_…`.');
  return {
    '/v1/batches': {
      post: op({
        id: 'createBatch',
        summary: 'Create a batch',
        description: 'Validated line by line by a worker before anything runs; each line then runs as a job.',
        parameters: [paramRef('IdempotencyKey')],
        body: jsonBody('BatchCreate'),
        responses: { 200: answer('The batch, `validating`.', 'Batch') },
        errors: [...JSON_ERRORS, 404, 409, 410, 422, 429],
      }),
      get: op({
        id: 'listBatches',
        summary: "List the tenant's batches",
        parameters: watchedListParams(100, 20),
        responses: watched('A page of batches.', 'BatchList'),
        errors: [400, 404],
      }),
    },
    '/v1/batches/{batch_id}': {
      parameters: [id],
      get: op({
        id: 'retrieveBatch',
        summary: 'Retrieve a batch',
        parameters: [paramRef('Wait'), paramRef('IfNoneMatch')],
        responses: watched('The batch; `request_counts` move while it runs.', 'Batch'),
        errors: [400, 404],
      }),
    },
    '/v1/batches/{batch_id}/cancel': {
      parameters: [id],
      post: op({
        id: 'cancelBatch',
        summary: 'Cancel a batch',
        responses: { 200: answer('The batch, `cancelling` (then `cancelled`).', 'Batch') },
        errors: [404, 409],
      }),
    },
  };
}

function webhookEndpointPaths(): Json {
  const op = v1('Webhooks');
  const endpoint = pathParam('endpoint_id', 'The endpoint id, `we-…`.');
  return {
    '/v1/webhook_endpoints': {
      post: op({
        id: 'createWebhookEndpoint',
        summary: 'Register a webhook endpoint',
        body: jsonBody('WebhookEndpointCreate'),
        responses: { 201: answer('The endpoint, with its secret (shown only here and on rotation).', 'WebhookEndpointWithSecret') },
        errors: JSON_ERRORS,
      }),
      get: op({
        id: 'listWebhookEndpoints',
        summary: "List the tenant's webhook endpoints",
        parameters: [...listParams(100, 100), paramRef('Tenant')],
        responses: { 200: answer('A page of endpoints.', 'WebhookEndpointList') },
        errors: [400, 404],
      }),
    },
    '/v1/webhook_endpoints/{endpoint_id}': {
      parameters: [endpoint],
      get: op({
        id: 'retrieveWebhookEndpoint',
        summary: 'Retrieve a webhook endpoint',
        responses: { 200: answer('The endpoint.', 'WebhookEndpoint') },
        errors: [404],
      }),
      patch: op({
        id: 'updateWebhookEndpoint',
        summary: 'Change a webhook endpoint',
        description: '`{"enabled": true}` turns a disabled endpoint back on.',
        body: jsonBody('WebhookEndpointChange'),
        responses: { 200: answer('The endpoint.', 'WebhookEndpoint') },
        errors: [...JSON_ERRORS, 404],
      }),
      delete: op({
        id: 'deleteWebhookEndpoint',
        summary: 'Delete a webhook endpoint',
        responses: { 200: answer('Deleted.', 'WebhookEndpointDeleted') },
        errors: [404],
      }),
    },
    '/v1/webhook_endpoints/{endpoint_id}/rotate_secret': {
      parameters: [endpoint],
      post: op({
        id: 'rotateWebhookSecret',
        summary: "Rotate an endpoint's secret",
        description: 'The old secret keeps signing beside the new one for 24 h.',
        responses: { 200: answer('The endpoint, with its new secret.', 'WebhookEndpointWithSecret') },
        errors: [404],
      }),
    },
  };
}

function webhookDeliveryPaths(): Json {
  const op = v1('Webhooks');
  const delivery = pathParam('delivery_id', 'The delivery id.');
  return {
    '/v1/webhook_deliveries': {
      get: op({
        id: 'listWebhookDeliveries',
        summary: "List the tenant's webhook deliveries",
        parameters: [
          ...watchedListParams(1000, 100),
          query('status', '`failed`: the dead letters.', oneOfValues(DELIVERY_STATUSES)),
          query('endpoint_id', 'Only deliveries to this endpoint.', str()),
        ],
        responses: watched('A page of deliveries.', 'WebhookDeliveryList'),
        errors: [400, 404],
      }),
    },
    '/v1/webhook_deliveries/{delivery_id}': {
      parameters: [delivery],
      get: op({
        id: 'retrieveWebhookDelivery',
        summary: 'Retrieve a webhook delivery',
        responses: { 200: answer('The delivery.', 'WebhookDelivery') },
        errors: [404],
      }),
    },
    '/v1/webhook_deliveries/{delivery_id}/retry': {
      parameters: [delivery],
      post: op({
        id: 'retryWebhookDelivery',
        summary: 'Send a delivery again',
        responses: { 202: answer('The delivery, `pending` again.', 'WebhookDelivery') },
        errors: [404, 409],
      }),
    },
  };
}

function modelPaths(): Json {
  const op = v1('Models');
  return {
    '/v1/models': {
      get: op({
        id: 'listModels',
        summary: 'List the models',
        description:
          "The Gemini models that generate or embed, from Gemini's catalogue as the workers last read it, narrowed by `FERRY_MODELS`.",
        responses: { 200: answer('The models.', 'ModelList') },
      }),
    },
    '/v1/models/{model}': {
      parameters: [pathParam('model', 'The model id, e.g. `gemini-2.0-flash`.')],
      get: op({ id: 'retrieveModel', summary: 'Retrieve a model', responses: { 200: answer('The model.', 'Model') }, errors: [404] }),
    },
  };
}

/** The query of a usage or costs report: OpenAI's, arrays as repeated names (`group_by[]=` and comma-separated values are read too). */
function reportParams(widths: string[], groups: string[]): Json[] {
  const list = (name: string, description: string, items: Json = str()) => ({
    ...query(name, description, arr(items)),
    style: 'form',
    explode: true,
  });
  return [
    query(
      'start_time',
      'The start, in Unix seconds (buckets start at whole minutes, hours or days, UTC).',
      int(undefined, { minimum: 0 }),
      true,
    ),
    query('end_time', 'The end, in Unix seconds (default: now).', int(undefined, { minimum: 0 })),
    query('bucket_width', 'The width of a bucket.', { ...oneOfValues(widths), default: '1d' }),
    list('group_by', 'Split each bucket by these.', oneOfValues(groups)),
    list('project_ids', 'Only these tenants (the admin key sees every tenant; a tenant key its own).'),
    list('models', 'Only these models.'),
    query('batch', 'Only batch (`true`) or only interactive (`false`) calls.', bool()),
    query('limit', 'Buckets per page (default 7 days, 24 hours or 60 minutes).', int(undefined, { minimum: 1 })),
    query('page', 'The `next_page` of an earlier answer to the same query.', str()),
  ];
}

function usagePaths(): Json {
  const op = v1('Usage');
  const WIDTHS = ['1m', '1h', '1d'];
  return {
    '/v1/organization/usage/completions': {
      get: op({
        id: 'usageCompletions',
        summary: 'Usage of chat completions and responses',
        parameters: reportParams(WIDTHS, ['project_id', 'model', 'batch', 'service_tier']),
        responses: { 200: answer('The buckets.', 'CompletionsUsagePage') },
        errors: [400],
      }),
    },
    '/v1/organization/usage/embeddings': {
      get: op({
        id: 'usageEmbeddings',
        summary: 'Usage of embeddings',
        parameters: reportParams(WIDTHS, ['project_id', 'model']),
        responses: { 200: answer('The buckets.', 'EmbeddingsUsagePage') },
        errors: [400],
      }),
    },
    '/v1/organization/costs': {
      get: op({
        id: 'costs',
        summary: 'Costs, in USD',
        parameters: reportParams(['1d'], ['project_id', 'line_item']),
        responses: { 200: answer('The buckets.', 'CostsPage') },
        errors: [400],
      }),
    },
  };
}

function consolePaths(): Json {
  const op = v1('Console');
  return {
    '/v1/me': {
      get: op({
        id: 'retrieveMe',
        summary: 'Who the key is',
        description:
          "Its tenant, whether it is the admin key, and the tenants it may list (`?tenant=` on a list narrows the admin's to one).",
        responses: { 200: answer('The key’s principal.', 'Principal') },
      }),
    },
    '/v1/activity': {
      get: op({
        id: 'retrieveActivity',
        summary: "The last hour's activity",
        description:
          "Counts and samples in 10-second buckets, as the console's overview draws them: the per-tenant series of the tenants the key may list, and the per-model and per-queue ones, which name no tenant.",
        parameters: [
          query('seconds', 'How far back, from 10 to 7,200.', int(undefined, { minimum: 10, maximum: 7200, default: 3600 })),
          paramRef('Tenant'),
          paramRef('IfNoneMatch'),
          paramRef('WatchWait'),
        ],
        responses: watched('The buckets and series.', 'Activity'),
        errors: [400, 404],
      }),
    },
  };
}

function operationPaths(): Json {
  const open = (o: Json) => ({ tags: ['Operations'], security: [], ...o });
  return {
    '/healthz': { get: open({ operationId: 'health', summary: 'Liveness', responses: { 200: answer('Alive.', 'Health') } }) },
    '/readyz': {
      get: open({
        operationId: 'readiness',
        summary: 'Readiness',
        description:
          "Ready when Redis answers and workers run. A probe's answer, so its 503 carries the readiness body, not the error shape.",
        responses: { 200: answer('Ready.', 'Readiness'), 503: answer('Not ready (yet).', 'Readiness') },
      }),
    },
    '/metrics': {
      get: open({
        operationId: 'metrics',
        summary: 'Prometheus metrics',
        responses: {
          200: answer('The metrics, in the Prometheus text format.', { 'text/plain': { schema: str() } }),
          500: errorResponse(500),
        },
      }),
    },
    '/openapi.json': {
      get: open({
        operationId: 'openapi',
        summary: 'This document',
        responses: {
          200: answer('The OpenAPI 3.1 document of this API.', {
            'application/json': { schema: { type: 'object', required: ['openapi', 'info', 'paths'] } },
          }),
        },
      }),
    },
  };
}

/** The web pages: Bull Board and the console. */
function pagePaths(): Json {
  const open = (o: Json) => ({ tags: ['Operations'], security: [], ...o });
  return {
    '/admin/queues': {
      get: open({
        operationId: 'queueDashboard',
        summary: 'The queue dashboard (Bull Board)',
        description:
          'A web page, with its assets and JSON API under this path. The admin key only, as Bearer or as the Basic-auth password.',
        security: [{ adminKey: [] }, { adminBasic: [] }],
        responses: {
          200: answer('The page.', { 'text/html': { schema: str() } }),
          401: { ...errorResponse(401), description: 'Not the admin key (with `WWW-Authenticate: Basic`).' },
          503: errorResponse(503),
        },
      }),
    },
    '/console': {
      get: open({
        operationId: 'console',
        summary: 'The console (batches, jobs, files, webhooks, usage) in the browser',
        description:
          'A web page with its assets under this path; no key to load it: the page asks for one and sends it with each API call. 404 `console_not_built` when `npm run build` has not built it.',
        security: [],
        responses: {
          200: answer('The page.', { 'text/html': { schema: str() } }),
          404: errorResponse(404),
        },
      }),
    },
  };
}

/** What Ferry sends to a webhook endpoint (OpenAPI's `webhooks`): one request per event, signed with Standard Webhooks. */
function webhookEvents(): Json {
  const signed = (name: string, description: string) => ({ name, in: 'header', required: true, description, schema: str() });
  return {
    event: {
      post: {
        operationId: 'webhookEvent',
        tags: ['Webhooks'],
        summary: 'An event, sent to each endpoint that takes its type',
        description: `Types: ${EVENT_TYPES.map((t) => `\`${t}\``).join(', ')}. Retried on failure on \`FERRY_WEBHOOK_RETRY_SCHEDULE\`; redirects are not followed.`,
        security: [],
        parameters: [
          signed('webhook-id', 'The event id, the same on every retry.'),
          signed('webhook-timestamp', 'Unix seconds.'),
          signed('webhook-signature', '`v1,<base64 HMAC-SHA256>`; two, space-separated, for 24 h after a rotation.'),
        ],
        requestBody: jsonBody('WebhookEvent'),
        responses: {
          '2XX': { description: 'Delivered.' },
          410: { description: 'Gone: the endpoint is disabled.' },
          default: { description: 'Not delivered: tried again later.' },
        },
      },
    },
  };
}

const DESCRIPTION = `Ferry moves documents and media into Google Gemini (or Azure Blob Storage) behind OpenAI's wire format: the official \`openai\` SDKs work unchanged. Besides OpenAI's paths and fields it has its own, marked "Ferry's" here.

- **Keys.** \`Authorization: Bearer <key>\`. A key maps to a tenant, which sees only its own objects (another tenant's id is a 404). The admin key (\`FERRY_ADMIN_KEY\`) reads, cancels and deletes any tenant's objects by id, and opens the queue dashboard.
- **Errors.** Every 4xx and 5xx of the API answers \`{"error": {"message", "type", "param", "code"}}\`.
- **Long-polls.** \`?wait=SECONDS\` on a file, job, batch or response waits (up to 120 s) until it reaches a final status.
- **Asynchronous work.** Completions, responses and embeddings run as jobs (\`/v1/jobs\`); \`Prefer: respond-async\` answers a completion with 202 and \`Location\` at once.
- **Idempotency.** \`Idempotency-Key\` on creating files, completions, responses, embeddings and batches.
- **Request ids.** A well-formed \`X-Request-Id\` is kept, else one is made; every answer carries it.`;

const TAGS = [
  ['Files', "OpenAI's Files API, kept in Gemini or Azure."],
  ['Uploads', "OpenAI's Uploads API: a large file in parts."],
  ['Chat', 'Chat completions, run on Gemini.'],
  ['Responses', "OpenAI's Responses API, run on Gemini."],
  ['Embeddings', "Gemini's embeddings."],
  ['Jobs', "Ferry's asynchronous work: completions, responses, embeddings and batch lines."],
  ['Batches', "OpenAI's Batch API, on Ferry's workers or Gemini Batch Mode."],
  ['Webhooks', "Ferry's webhook endpoints and deliveries."],
  ['Models', 'The Gemini models a request may name.'],
  ['Usage', "OpenAI's organization usage and costs reports, from Ferry's ledger."],
  ['Console', "Ferry's: who a key is and the last hour's activity, which the console reads."],
  ['Operations', 'Liveness, readiness, metrics, this document and the queue dashboard: no key, but the dashboard.'],
].map(([name, description]) => ({ name, description }));

const SECURITY_SCHEMES = {
  tenantKey: { type: 'http', scheme: 'bearer', description: "A tenant's key (`FERRY_API_KEYS`): its own objects." },
  adminKey: {
    type: 'http',
    scheme: 'bearer',
    description: "The admin key (`FERRY_ADMIN_KEY`): any tenant's objects by id, and the queue dashboard.",
  },
  adminBasic: { type: 'http', scheme: 'basic', description: 'The admin key as the Basic-auth password (for browsers, on the dashboard).' },
};

/** The OpenAPI 3.1 document of Ferry's API; `version` is the service's. */
export function openapiDocument(version: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Ferry',
      version,
      summary: 'An OpenAI-compatible API in front of Google Gemini.',
      description: DESCRIPTION,
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    servers: [
      { url: '/', description: 'The Ferry that serves this document.' },
      { url: 'http://127.0.0.1:8080', description: 'A Ferry on this machine (`npm start`).' },
    ],
    security: [{ tenantKey: [] }, { adminKey: [] }],
    tags: TAGS,
    paths: {
      ...filePaths(),
      ...uploadPaths(),
      ...chatPaths(),
      ...responsePaths(),
      ...embeddingPaths(),
      ...jobPaths(),
      ...batchPaths(),
      ...webhookEndpointPaths(),
      ...webhookDeliveryPaths(),
      ...modelPaths(),
      ...usagePaths(),
      ...consolePaths(),
      ...operationPaths(),
      ...pagePaths(),
    },
    webhooks: webhookEvents(),
    components: {
      schemas: SCHEMAS,
      responses: Object.fromEntries(Object.keys(ERRORS).map((s) => [`Error${s}`, errorResponse(Number(s))])),
      parameters: PARAMETERS,
      headers: HEADERS,
      securitySchemes: SECURITY_SCHEMES,
    },
  };
}
