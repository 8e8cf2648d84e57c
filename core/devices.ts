import { ApiKeys } from './api-keys.js';
import type { Authenticator } from './authenticator.js';
import { Certificates } from './certificates.js';
import { ClaimCodes } from './claim-codes.js';
import type { DeviceOptions } from './device-options.js';
import { DeviceState } from './device-state.js';
import type { Logger } from './logger.js';
import type { Identity } from './ports/identity.js';
import type { Registry } from './ports/registry.js';
import type { Store } from './ports/store.js';
import type { PrincipalEvents } from './principal-events.js';
import { SelfRegistrations } from './self-registration.js';

/**
 * The use cases of getting devices in and knowing their state, together: API keys, self-
 * registration with a key, claim codes, client certificates, last-known state and twins
 * (presence is the Presence service). What transports call; each says its rules and errors.
 */
export class Devices {
  readonly apiKeys: ApiKeys;
  readonly claimCodes: ClaimCodes;
  readonly selfRegistrations: SelfRegistrations;
  readonly certificates: Certificates;
  readonly state: DeviceState;

  constructor(deps: { identity: Identity; registry: Registry; store: Store; authenticator: Authenticator; events: PrincipalEvents; logger: Logger }, options: DeviceOptions) {
    const { identity, registry, authenticator } = deps;
    this.apiKeys = new ApiKeys(identity, registry, authenticator, options.maxApiKeysPerOwner);
    this.claimCodes = new ClaimCodes(identity, registry, authenticator, deps.events, options, deps.logger);
    this.selfRegistrations = new SelfRegistrations(identity, registry, authenticator, this.apiKeys, this.claimCodes, deps.events, options.registrations);
    this.certificates = new Certificates(identity, registry, authenticator, deps.events);
    this.state = new DeviceState(identity, registry, deps.store, options);
  }
}
