// SASL security layer (AMQP 1.0 §5.3): the client picks a mechanism from the
// server's list, sends sasl-init, answers challenges, and reads the outcome.
// ANONYMOUS, PLAIN (RFC 4616) and EXTERNAL are built in; any other mechanism
// (e.g. a token scheme) plugs in through the SaslMechanism interface.
import { define, MANDATORY, MULTIPLE, type Composite } from './codec/described.js';
import { ConnectionError, Condition, SaslError, type AmqpError } from './errors.js';
import type { Frame, FrameTable } from './frames.js';
import { log } from './log.js';

/** §5.3.3.1-5: the SASL frame bodies. */
interface SaslMechanisms {
  saslServerMechanisms?: string[];
}
interface SaslInit {
  mechanism: string;
  initialResponse?: Buffer;
  hostname?: string;
}
interface SaslChallenge {
  challenge: Buffer;
}
interface SaslResponse {
  response: Buffer;
}
interface SaslOutcome {
  code: number;
  additionalData?: Buffer;
}

const SaslMechanismsType = define<SaslMechanisms>('sasl-mechanisms', 0x40, 'amqp:sasl-mechanisms:list', [['sasl-server-mechanisms', 'symbol', MULTIPLE]]);
const SaslInitType = define<SaslInit>('sasl-init', 0x41, 'amqp:sasl-init:list', [
  ['mechanism', 'symbol', MANDATORY],
  ['initial-response', 'binary'],
  ['hostname', 'string'],
]);
const SaslChallengeType = define<SaslChallenge>('sasl-challenge', 0x42, 'amqp:sasl-challenge:list', [['challenge', 'binary', MANDATORY]]);
const SaslResponseType = define<SaslResponse>('sasl-response', 0x43, 'amqp:sasl-response:list', [['response', 'binary', MANDATORY]]);
const SaslOutcomeType = define<SaslOutcome>('sasl-outcome', 0x44, 'amqp:sasl-outcome:list', [
  ['code', 'ubyte', MANDATORY],
  ['additional-data', 'binary'],
]);

/** The frames a SASL client receives (§5.3.2): init and response only go the other way. */
interface SaslBodies {
  'sasl-mechanisms': SaslMechanisms;
  'sasl-challenge': SaslChallenge;
  'sasl-outcome': SaslOutcome;
}
export const SaslFrames: FrameTable<SaslBodies> = {
  'sasl-mechanisms': SaslMechanismsType,
  'sasl-challenge': SaslChallengeType,
  'sasl-outcome': SaslOutcomeType,
};

/** §5.3.3.6 sasl-code */
const SaslCode = { Ok: 0, Auth: 1, Sys: 2 } as const;
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

type Send = <T extends object>(composite: Composite<T>, body: T) => void;

const outOfOrder = (what: string): ConnectionError => new ConnectionError({ condition: Condition.NotAllowed, description: `SASL: ${what}` }, 'ERR_AMQP_PROTOCOL');

/**
 * Client side of one SASL exchange (§5.3.2). Frames are handled as they are
 * parsed, so the outcome is known before the parser reads the next byte: a
 * server may send its AMQP header and open in the same TCP segment.
 */
export class SaslClient {
  /** mechanisms: waiting for the server's list; answering: our init or response is being prepared; sent: it went out. */
  private state: 'mechanisms' | 'answering' | 'sent' | 'done' = 'mechanisms';
  private initSent = false;

  constructor(
    private readonly mechanism: SaslMechanism,
    private readonly hostname: string,
    private readonly send: Send,
    /** Called when a mechanism's asynchronous answer fails. */
    private readonly fail: (e: AmqpError) => void,
  ) {}

  /** Handles one SASL frame; true once the outcome is ok. Throws on a refusal or a frame out of order. */
  onFrame(f: Frame<SaslBodies>): boolean {
    switch (f.name) {
      case 'sasl-mechanisms': {
        if (this.state !== 'mechanisms') throw outOfOrder('a second sasl-mechanisms');
        const offered = f.body.saslServerMechanisms ?? [];
        log.sasl('server offers %o, we use %s', offered, this.mechanism.name);
        if (!offered.includes(this.mechanism.name)) {
          throw new SaslError(SaslCode.Auth, `server does not offer ${this.mechanism.name} (offers ${offered.join(', ') || 'nothing'})`);
        }
        this.answer(
          () => this.mechanism.initialResponse(),
          (initialResponse) => {
            this.initSent = true;
            this.send(SaslInitType, { mechanism: this.mechanism.name, initialResponse, hostname: this.hostname });
          },
        );
        return false;
      }
      case 'sasl-challenge': {
        if (this.state !== 'sent') throw outOfOrder(`sasl-challenge before our ${this.awaited()}`);
        const challenge = this.mechanism.challenge?.bind(this.mechanism);
        if (!challenge) throw new SaslError(SaslCode.Auth, `${this.mechanism.name} cannot answer a challenge`);
        this.answer(
          () => challenge(f.body.challenge),
          (response) => this.send(SaslResponseType, { response: response ?? Buffer.alloc(0) }),
        );
        return false;
      }
      case 'sasl-outcome': {
        // §5.3.2: the outcome answers our init (or last response); earlier, the server skipped the exchange.
        if (this.state !== 'sent') throw outOfOrder(`sasl-outcome before our ${this.awaited()}`);
        const code = f.body.code;
        log.sasl('outcome %d (%s)', code, CODE_TEXT[code] ?? 'unknown');
        if (code !== SaslCode.Ok) throw new SaslError(code, `SASL ${this.mechanism.name} refused: ${CODE_TEXT[code] ?? `code ${code}`}`);
        this.state = 'done';
        return true;
      }
    }
  }

  private awaited(): string {
    return this.initSent ? 'sasl-response' : 'sasl-init';
  }

  /** Runs a mechanism step (possibly asynchronous) and sends its result, unless the exchange failed meanwhile. */
  private answer(step: () => Buffer | undefined | Promise<Buffer | undefined>, send: (data: Buffer | undefined) => void): void {
    this.state = 'answering';
    const sent = (data: Buffer | undefined): void => {
      if (this.state === 'answering') {
        this.state = 'sent';
        send(data);
      }
    };
    let result: Buffer | undefined | Promise<Buffer | undefined>;
    try {
      result = step();
    } catch (e) {
      this.failWith(e);
      return;
    }
    if (result instanceof Promise) result.then(sent, (e: unknown) => this.failWith(e));
    else sent(result);
  }

  private failWith(e: unknown): void {
    this.state = 'done';
    this.fail(new SaslError(SaslCode.Sys, `SASL ${this.mechanism.name} failed: ${e instanceof Error ? e.message : String(e)}`));
  }
}
