// Event Hubs connection strings: `Endpoint=sb://<namespace>.servicebus.windows.net/;
// SharedAccessKeyName=<rule>;SharedAccessKey=<key>;EntityPath=<hub>`, as the portal shows
// them, plus `UseDevelopmentEmulator=true`, with which the Azure SDKs speak plain AMQP to a
// local emulator (port 5672 unless the Endpoint names one).

export interface HubAddress {
  host: string;
  port: number;
  tls: boolean;
  keyName: string;
  key: string;
  hub: string;
  /** The Endpoint with a trailing slash, as token audiences are built from it: `sb://host/`. */
  endpoint: string;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[?::1\]?)$/i;

/**
 * Parses a connection string. Returns the address, or the list of problems; a problem
 * names the key at fault and never repeats a value, since the string holds the key.
 */
export function parseConnectionString(text: string): HubAddress | { problems: string[] } {
  const fields = new Map<string, string>();
  for (const part of text.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) return { problems: ['must be Key=Value pairs separated by ";"'] };
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const problems: string[] = [];
  const endpoint = fields.get('endpoint');
  const keyName = fields.get('sharedaccesskeyname');
  const key = fields.get('sharedaccesskey');
  const hub = fields.get('entitypath');
  const emulator = fields.get('usedevelopmentemulator')?.toLowerCase() === 'true';
  let url: URL | undefined;
  if (!endpoint) problems.push('Endpoint is missing');
  else {
    try {
      url = new URL(endpoint);
    } catch {
      /* reported below */
    }
    if (!url || url.protocol !== 'sb:' || !url.hostname) {
      problems.push('Endpoint must look like sb://<namespace>.servicebus.windows.net/');
      url = undefined;
    } else if (emulator && !LOOPBACK.test(url.hostname)) problems.push('UseDevelopmentEmulator=true needs an Endpoint on the loopback address');
  }
  if (fields.has('sharedaccesssignature')) problems.push('SharedAccessSignature is not supported: give SharedAccessKeyName and SharedAccessKey');
  if (!keyName) problems.push('SharedAccessKeyName is missing');
  if (!key) problems.push('SharedAccessKey is missing');
  if (!hub) problems.push('EntityPath is missing (the event hub name; a namespace-level string lacks it)');
  if (problems.length > 0 || !url) return { problems };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return {
    host,
    port: url.port ? Number(url.port) : emulator ? 5672 : 5671,
    // The Azure service takes AMQP over TLS only; the emulator takes plain AMQP only.
    tls: !emulator,
    keyName: keyName!,
    key: key!,
    hub: hub!,
    endpoint: endpoint!.endsWith('/') ? endpoint! : `${endpoint}/`,
  };
}
