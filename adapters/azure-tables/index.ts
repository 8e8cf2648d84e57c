import { NitrogenError } from '../../core/errors.js';
import { definePlugin } from '../../core/plugin.js';
import { AzureTablesRegistry, AzureRegistryOptions } from './azure-registry.js';
import { AzureStoreOptions, AzureTablesStore } from './azure-store.js';

export { AzureTablesRegistry, AzureTablesStore };

/** A message of N UTF-8 bytes may take up to N UTF-16 units, 2 bytes each in a 1 MiB entity. */
const LARGEST_MESSAGE = 480 * 1024;

export const azureTablesStorePlugin = definePlugin({
  name: 'azure-tables',
  kind: 'store',
  description: 'Azure Tables store shared by several instances: per-device partitions, index rows, a numbered feed',
  options: AzureStoreOptions,
  create: ({ config }, options) => {
    if (config.limits.maxMessageBytes > LARGEST_MESSAGE) {
      throw new NitrogenError('NITROGEN_ERR_CONFIG', `limits.maxMessageBytes: the azure-tables store holds messages up to ${LARGEST_MESSAGE} bytes (an entity is at most 1 MiB)`);
    }
    return new AzureTablesStore(options);
  },
});

export const azureTablesRegistryPlugin = definePlugin({
  name: 'azure-tables',
  kind: 'registry',
  description: 'Azure Tables registry of principals and permissions',
  options: AzureRegistryOptions,
  create: (_context, options) => new AzureTablesRegistry(options),
});
