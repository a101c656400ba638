/** The client commands, named apart from their code so that `ferry api` and `ferry worker` do not load the SDK. */
export const CLIENT_COMMANDS = ['submit', 'status'];

export const CLIENT_USAGE = `  submit <files or folders> --prompt "…" [--model M] [--storage azure_storage] [--execution gemini_batch] [--endpoint responses] [--out results.jsonl]
             uploads the documents, runs one batch request per document, writes the results (JSONL, stdout by default);
             --execution gemini_batch runs them on Gemini Batch Mode (half price, slower);
             --endpoint responses sends them to /v1/responses instead of /v1/chat/completions
  status <batch_id> [--json]
             shows a batch
  (client options: --base-url URL or FERRY_BASE_URL, --api-key KEY or FERRY_API_KEY)`;
