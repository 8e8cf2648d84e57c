// SASL security layer (AMQP 1.0 §5.3): the client picks a mechanism from the
// server's list, sends sasl-init, answers challenges, and reads the outcome.
// ANONYMOUS, PLAIN (RFC 4616) and EXTERNAL are built in; any other mechanism
// (e.g. a token scheme) plugs in through the SaslMechanism interface.
import { define, MANDATORY, MULTIPLE } from './codec/described.js';
import { SaslError } from './errors.js';
import { log } from './log.js';

/** §5.3.3.1-5: the SASL frame bodies. */
export const SaslMechanismsType = define('sasl-mechanisms', 0x40, 'amqp:sasl-mechanisms:list', [
  ['sasl-server-mechanisms', 'symbol', MULTIPLE],
]);
export const SaslInitType = define('sasl-init', 0x41, 'amqp:sasl-init:list', [
  ['mechanism', 'symbol', MANDATORY],
  ['initial-response', 'binary'],
  ['hostname', 'string'],
]);
export const SaslChallengeType = define('sasl-challenge', 0x42, 'amqp:sasl-challenge:list', [
  ['challenge', 'binary', MANDATORY],
]);
export const SaslResponseType = define('sasl-response', 0x43, 'amqp:sasl-response:list', [
  ['response', 'binary', MANDATORY],
]);
export const SaslOutcomeType = define('sasl-outcome', 0x44, 'amqp:sasl-outcome:list', [
  ['code', 'ubyte', MANDATORY],
  ['additional-data', 'binary'],
]);

/** §5.3.3.6 sasl-code */
export const SaslCode = { Ok: 0, Auth: 1, Sys: 2, SysPerm: 3, SysTemp: 4 } as const;
const CODE_TEXT = ['ok', 'authentication failed', 'system error', 'permanent system error', 'temporary system error'];

/** A SASL mechanism. `challenge` is needed only by mechanisms with more than one round. */
export interface SaslMechanism {
  readonly name: string;
  initialResponse(): Buffer | undefined | Promise<Buffer | undefined>;
  challenge?(data: Buffer): Buffer | Promise<Buffer>;
}

export const Sasl = {
  anonymous: (trace = ''): SaslMechanism => ({ name: 'ANONYMOUS', initialResponse: () => Buffer.from(trace) }),
  /** RFC 4616: authzid NUL authcid NUL password. */
  plain: (username: string, password: string, authzid = ''): SaslMechanism => ({
    name: 'PLAIN',
    initialResponse: () => Buffer.from(`${authzid}\0${username}\0${password}`, 'utf8'),
  }),
  /** Identity from the TLS client certificate (RFC 4422 appendix A). */
  external: (authzid = ''): SaslMechanism => ({ name: 'EXTERNAL', initialResponse: () => Buffer.from(authzid) }),
};

type Send = (composite: typeof SaslInitType, body: object) => void;

/** Client side of one SASL exchange. Resolves when the outcome is ok. */
export class SaslClient {
  readonly done: Promise<void>;
  private resolve!: () => void;
  private reject!: (e: Error) => void;

  constructor(private readonly mechanism: SaslMechanism, private readonly hostname: string, private readonly send: Send) {
    this.done = new Promise((res, rej) => { this.resolve = res; this.reject = rej; });
    this.done.catch(() => undefined); // the connection observes it; avoid an unhandled rejection in between
  }

  fail(e: Error): void { this.reject(e); }

  async onFrame(name: string, body: Record<string, unknown>): Promise<void> {
    try {
      switch (name) {
        case 'sasl-mechanisms': {
          const offered = (body.saslServerMechanisms as string[] | undefined) ?? [];
          log.sasl('server offers %o, we use %s', offered, this.mechanism.name);
          if (!offered.includes(this.mechanism.name)) {
            throw new SaslError(SaslCode.Auth, `server does not offer ${this.mechanism.name} (offers ${offered.join(', ') || 'nothing'})`);
          }
          const initialResponse = await this.mechanism.initialResponse();
          this.send(SaslInitType, { mechanism: this.mechanism.name, initialResponse, hostname: this.hostname });
          return;
        }
        case 'sasl-challenge': {
          if (!this.mechanism.challenge) throw new SaslError(SaslCode.Auth, `${this.mechanism.name} cannot answer a challenge`);
          const response = await this.mechanism.challenge(body.challenge as Buffer);
          this.send(SaslResponseType, { response });
          return;
        }
        case 'sasl-outcome': {
          const code = body.code as number;
          log.sasl('outcome %d (%s)', code, CODE_TEXT[code] ?? 'unknown');
          if (code === SaslCode.Ok) this.resolve();
          else throw new SaslError(code, `SASL ${this.mechanism.name} refused: ${CODE_TEXT[code] ?? `code ${code}`}`);
          return;
        }
        default:
          throw new SaslError(SaslCode.Sys, `unexpected SASL frame ${name}`);
      }
    } catch (e) {
      this.reject(e as Error);
    }
  }
}
