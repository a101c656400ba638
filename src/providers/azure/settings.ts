/**
 * Which Azure settings are missing for `target_storage: "azure_storage"`.
 * The API refuses such uploads with a 400 naming them; workers without them
 * have no Azure provider.
 */
import type { Config } from '../../core/config.js';

export type AzureSettings = Config['azure'];

/**
 * Either a connection string, or an account (by name, or by AZURE_STORAGE_ENDPOINT)
 * authenticated by AZURE_STORAGE_ACCOUNT_KEY or, without a key, by
 * DefaultAzureCredential. The container is always needed.
 */
export function missingAzureSettings(azure: AzureSettings): string[] {
  const missing: string[] = [];
  if (!azure.connectionString) {
    const needsName = !azure.endpoint || azure.accountKey !== undefined;
    if (needsName && !azure.accountName) missing.push('AZURE_STORAGE_ACCOUNT_NAME');
  }
  if (!azure.fileSystem) missing.push('AZURE_STORAGE_FILE_SYSTEM');
  return missing;
}

export function describeMissing(missing: string[]): string {
  return (
    `target_storage "azure_storage" is not configured on this server: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set ` +
    '(set AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_FILE_SYSTEM and AZURE_STORAGE_ACCOUNT_KEY, or AZURE_STORAGE_CONNECTION_STRING and AZURE_STORAGE_FILE_SYSTEM).'
  );
}
