/** Queue names, defined once. Every queue shares the configured key prefix. */
export const QUEUES = {
  upload: 'upload',
  generate: 'generate',
  deliver: 'deliver',
  batch: 'batch',
  maintenance: 'maintenance',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** Job names on the upload queue. */
export const UPLOAD_JOBS = { upload: 'upload', remove: 'remove' } as const;

/** Deterministic job ids: an enqueue repeated for the same file never duplicates. */
export const jobIds = {
  upload: (fileId: string) => `upload-${fileId}`,
  remove: (fileId: string) => `remove-${fileId}`,
};
