/** A long document and a batch of questions about it: what context caching is for (tests and the cost bench). */

/** A PDF of `pages` page objects (Gemini counts 258 tokens a page; so does the emulator). */
export const pdf = (pages: number) =>
  Buffer.from(
    `%PDF-1.7\n${Array.from({ length: pages }, (_, i) => `${i + 3} 0 obj << /Type /Page /Parent 2 0 R >> endobj\n`).join('')}%%EOF\n`,
  );

/** `n` batch lines, each a different question about the file `fileId`, which each opens with. */
export const questionsAbout = (fileId: string, n: number, model: string) =>
  Array.from({ length: n }, (_, i) => ({
    custom_id: `q-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'file', file: { file_id: fileId } },
            { type: 'text', text: `question number ${i}: what does section ${i % 37} say?` },
          ],
        },
      ],
    },
  }));
