import assert from 'node:assert/strict';
import { ClientAddresses, addressKey, isAddressOrSubnet } from '../core/client-address.js';
import { isNitrogenError } from '../core/errors.js';
import { IngestQuota, QuotaOptions } from '../core/ingest-quota.js';
import { TokenBuckets } from '../core/token-buckets.js';

describe('client addresses', () => {
  it('counts IPv4 addresses as they are and IPv6 ones by their /64', () => {
    assert.equal(addressKey('203.0.113.7'), '203.0.113.7');
    assert.equal(addressKey('::ffff:203.0.113.7'), '203.0.113.7', 'an IPv4 client on a dual-stack socket');
    assert.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:0db8:0001:0002::9'), '2001:db8:1:2::/64', 'another address of the same /64');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  });

  it('accepts addresses and subnets as trusted proxies, and nothing else', () => {
    for (const ok of ['10.0.0.5', '10.0.0.0/8', '2001:db8::/32', '::1']) assert.ok(isAddressOrSubnet(ok), ok);
    for (const bad of ['10.0.0.0/33', 'proxy.local', '10.0.0.0/8/1', '', '2001:db8::/129', '10.0.0.0/x']) assert.ok(!isAddressOrSubnet(bad), bad);
  });

  it('reads X-Forwarded-For only from trusted proxies, from the right', () => {
    const addresses = new ClientAddresses(['10.0.0.5', '10.1.0.0/16']);
    assert.deepEqual(addresses.resolve('198.51.100.9', '203.0.113.1'), { key: '198.51.100.9', sharedProxy: false }, 'not a proxy: the header is ignored');
    assert.deepEqual(addresses.resolve('10.0.0.5', '203.0.113.1, 198.51.100.2'), { key: '198.51.100.2', sharedProxy: false }, 'the hop the proxy saw');
    assert.deepEqual(addresses.resolve('10.0.0.5', '203.0.113.1, 10.1.2.3'), { key: '203.0.113.1', sharedProxy: false }, 'trusted hops are skipped');
    assert.deepEqual(addresses.resolve('::ffff:10.0.0.5', undefined), { key: '10.0.0.5', sharedProxy: true }, 'a proxy that names no client');
    assert.deepEqual(addresses.resolve('10.0.0.5', 'garbage, 10.1.2.3'), { key: '10.0.0.5', sharedProxy: true }, 'nothing left of a malformed hop is trusted');
  });
});

describe('token buckets', () => {
  it('refill over time, and keep no entry for a full bucket', () => {
    const buckets = new TokenBuckets(10, 10 / 60_000, 100);
    for (let i = 0; i < 10; i++) buckets.take('a', 1, 0);
    assert.equal(buckets.level('a', 0), 0);
    assert.equal(buckets.waitFor('a', 1, 0), 6000);
    assert.equal(buckets.level('a', 6000), 1);
    buckets.take('a', -100, 60_000);
    assert.equal(buckets.size, 0, 'a full bucket is forgotten');
  });

  it('hold at most maxTracked keys, forgetting the oldest', () => {
    const buckets = new TokenBuckets(1, 1 / 60_000, 100);
    for (let i = 0; i < 1000; i++) buckets.take(`k${i}`, 1, 0);
    assert.equal(buckets.size, 100);
    assert.equal(buckets.level('k0', 0), 1, 'the oldest starts afresh');
    assert.equal(buckets.level('k999', 0), 0);
  });
});

describe('ingestion quota', () => {
  const exceeded = (limit: string) => (err: unknown) => isNitrogenError(err, 'NITROGEN_ERR_QUOTA_EXCEEDED') && err.details?.limit === limit;

  it('charges within the burst, then refuses or holds back, and never holds longer than maxDelay', () => {
    const quota = new IngestQuota(QuotaOptions.parse({ messages: { perSecond: 10, burst: 10 }, maxDelay: '1s' }));
    assert.equal(quota.charge('car', 10, 100, 0, false), 0);
    assert.throws(() => quota.charge('car', 1, 10, 0, false), exceeded('quota.messages'));
    assert.equal(quota.charge('car', 5, 10, 0, true), 500, 'held back until the allowance covers it');
    assert.equal(quota.charge('car', 5, 10, 0, true), 1000);
    assert.throws(() => quota.charge('car', 1, 10, 0, true), exceeded('quota.messages'), 'past maxDelay');
    assert.equal(quota.charge('other', 1, 10, 0, false), 0, 'each sender has its own');
    assert.equal(quota.charge('car', 1, 10, 2100, false), 0, 'refilled');
  });

  it('counts bytes, and says when a request can never fit', () => {
    const quota = new IngestQuota(QuotaOptions.parse({ bytes: { perSecond: 1000, burst: 5000 } }));
    assert.equal(quota.charge('car', 1, 4000, 0, false), 0);
    assert.throws(() => quota.charge('car', 1, 2000, 0, false), exceeded('quota.bytes'));
    assert.throws(
      () => quota.charge('car', 1, 6000, 10_000, false),
      (err: unknown) => isNitrogenError(err) && err.retryAfter === undefined && /smaller batches/.test(err.message),
    );
  });
});
