/**
 * The URL of a broker `.ci/interop-brokers.sh` started, from its environment variable. Without
 * it the suite is skipped, except in CI, where a missing broker is a failure, not a skip.
 */
export function brokerUrl(context: Mocha.Context, env: string): string {
  const value = process.env[env];
  if (value) return value;
  if (process.env.CI === 'true') throw new Error(`${env} is not set: run .ci/interop-brokers.sh and source the file it writes`);
  context.skip();
}
