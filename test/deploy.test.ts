// The container recipes (deploy/Dockerfile, deploy/compose.yaml, deploy/k8s/) cannot run here: no
// container engine. What can drift is checked instead: they run the files `npm run cluster` runs
// (deploy/nitrogen.json, deploy/nginx.conf.template), on the ports those files give, with every
// variable those files refer to, only environment variables the configuration loader knows, and
// probes on routes the server answers.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { ENVIRONMENT_VARIABLES, loadConfig } from '../core/config.js';
import { DEPLOY_DIR, referencedVariables, renderTemplate, upstreamServers } from '../deploy/local/topology.js';
import { startServer } from './helpers/server.js';

const read = (file: string) => readFileSync(join(DEPLOY_DIR, file), 'utf8');
const instanceConfig = read('nitrogen.json');
const template = read('nginx.conf.template');
const compose = parse(read('compose.yaml'), { merge: true });
const manifests = readdirSync(join(DEPLOY_DIR, 'k8s'))
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseAllDocuments(read(join('k8s', f))).map((d) => d.toJS()))
  .filter((doc) => doc?.kind);
const manifest = (kind: string) => {
  const found = manifests.find((m) => m.kind === kind);
  assert.ok(found, `deploy/k8s has a ${kind}`);
  return found;
};
const plugins = JSON.parse(instanceConfig).plugins as Array<{ use: string; options: { port: number } }>;
const portOf = (use: string) => plugins.find((p) => p.use === use)!.options.port;
/** What the instances' configuration needs from the environment. */
const needed = referencedVariables(instanceConfig);
const known = new Set<string>([...ENVIRONMENT_VARIABLES, ...needed]);

describe('deploy/: container recipes consistent with the local cluster', () => {
  it('runs a valid instance configuration once its variables are set, and refuses to start without them', () => {
    assert.deepEqual(needed, ['NITROGEN_DATABASE_URL', 'NITROGEN_INSTANCE_ID', 'NITROGEN_REDIS_URL', 'NITROGEN_TOKEN_SECRET']);
    const env = { NITROGEN_CONFIG: join(DEPLOY_DIR, 'nitrogen.json'), NITROGEN_DATABASE_URL: 'postgresql://n@db/n', NITROGEN_INSTANCE_ID: 'nitrogen-1', NITROGEN_REDIS_URL: 'redis://r:6379', NITROGEN_TOKEN_SECRET: 'x'.repeat(32) };
    const config = loadConfig(env);
    assert.equal(config.cluster.instanceId, 'nitrogen-1');
    assert.equal(config.cluster.bus?.use, 'redis');
    assert.throws(() => loadConfig({ ...env, NITROGEN_REDIS_URL: '' }), /NITROGEN_REDIS_URL, which is not set/);
  });

  it('gives the nginx template every variable it uses, in compose as in npm run cluster', () => {
    const nginx = compose.services.nginx;
    for (const name of referencedVariables(template)) assert.ok(name in nginx.environment, `compose's nginx sets ${name}`);
    assert.ok(
      nginx.volumes.some((v: string) => v.startsWith('./nginx.conf.template:/etc/nginx/templates/nginx.conf.template')),
      'compose mounts the template the local cluster renders',
    );
    assert.equal(nginx.environment.NGINX_ENVSUBST_OUTPUT_DIR, '/etc/nginx', 'rendered as the main nginx.conf: stream{} must be at its top level');
    // Rendered with compose's values, it is the local cluster's file with other addresses.
    const rendered = renderTemplate(template, nginx.environment);
    assert.match(rendered, /stream \{[\s\S]*upstream nitrogen_mqtt \{[\s\S]*server nitrogen-1:1883 max_fails=1 fail_timeout=5s;/);
    assert.match(rendered, /location = \/api\/v1\/messages\/stream \{[^}]*proxy_buffering off;/);
    assert.equal(upstreamServers(['nitrogen-1:1883']), nginx.environment.NITROGEN_MQTT_SERVERS.split(' server')[0].trim());
  });

  it("points nginx at every instance of compose on the ports of the instances' configuration", () => {
    const instances = Object.keys(compose.services).filter((name) => name.startsWith('nitrogen-'));
    assert.equal(instances.length, 3, 'three instances, as npm run cluster starts by default');
    const { NITROGEN_MQTT_SERVERS: mqtt, NITROGEN_REST_SERVERS: rest } = compose.services.nginx.environment;
    for (const name of instances) {
      assert.ok(mqtt.includes(`server ${name}:${portOf('mqtt')} `), `nginx sends MQTT to ${name}`);
      assert.ok(rest.includes(`server ${name}:${portOf('rest')} `), `nginx sends REST to ${name}`);
      const service = compose.services[name];
      assert.equal(service.environment.NITROGEN_INSTANCE_ID, name);
      for (const variable of needed) assert.ok(variable in service.environment, `${name} sets ${variable}`);
      for (const variable of Object.keys(service.environment)) assert.ok(known.has(variable), `${name}: ${variable} is no variable the configuration loader reads`);
      assert.ok(service.volumes.includes(`./nitrogen.json:${service.environment.NITROGEN_CONFIG}:ro`), `${name} runs deploy/nitrogen.json`);
    }
  });

  it('builds a non-root, multi-stage image whose signals reach node and whose health check asks /ready', () => {
    const dockerfile = read('Dockerfile');
    assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage');
    assert.match(dockerfile, /^USER node$/m);
    assert.match(dockerfile, /^STOPSIGNAL SIGTERM$/m);
    assert.match(dockerfile, /^HEALTHCHECK [\s\S]*127\.0\.0\.1:3000\/ready/m);
    assert.equal(portOf('rest'), 3000, 'the health check asks the REST port of deploy/nitrogen.json');
    // Exec form: node itself is PID 1's child-free process, with no shell to swallow SIGTERM.
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    assert.equal(cmd[0], 'node');
    assert.ok(existsSync(join(DEPLOY_DIR, '..', cmd[cmd.length - 1]!.replace(/^dist\//, '').replace(/\.js$/, '.ts'))), `${cmd.at(-1)} is built from the sources`);
    const configPath = /NITROGEN_CONFIG=(\S+)/.exec(dockerfile)![1];
    assert.match(dockerfile, new RegExp(`^COPY deploy/nitrogen.json ${configPath}$`, 'm'));
    for (const port of [portOf('mqtt'), portOf('rest')]) assert.match(dockerfile, new RegExp(`^EXPOSE .*\\b${port}\\b`, 'm'));
  });

  it('runs the same configuration on Kubernetes, with probes, a disruption budget and an autoscaler on the Deployment', () => {
    const configMap = manifest('ConfigMap');
    assert.deepEqual(JSON.parse(configMap.data['nitrogen.json']), JSON.parse(instanceConfig), 'the ConfigMap holds deploy/nitrogen.json');
    const deployment = manifest('Deployment');
    const pod = deployment.spec.template;
    const container = pod.spec.containers[0];
    const env = new Map<string, unknown>(container.env.map((e: { name: string; value?: string }) => [e.name, e.value]));
    const secret = manifest('Secret');
    for (const name of [...env.keys(), ...Object.keys(secret.stringData)]) assert.ok(known.has(name), `${name} is no variable the configuration loader reads`);
    for (const name of needed) assert.ok(env.has(name) || name in secret.stringData, `the pods get ${name}`);
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'config');
    assert.equal(`${mount.mountPath}/nitrogen.json`, env.get('NITROGEN_CONFIG'));
    assert.equal(pod.spec.volumes.find((v: { name: string }) => v.name === 'config').configMap.name, configMap.metadata.name);
    assert.equal(container.envFrom[0].secretRef.name, secret.metadata.name);
    const ports = new Map(container.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
    assert.equal(ports.get('mqtt'), portOf('mqtt'));
    assert.equal(ports.get('http'), portOf('rest'));
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) assert.ok(ports.has(container[probe].httpGet.port), `${probe} on a named port`);
    assert.equal(container.readinessProbe.httpGet.path, '/ready');
    assert.ok(pod.spec.securityContext.runAsNonRoot);

    const labels = pod.metadata.labels;
    const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    assert.ok(selects(deployment.spec.selector.matchLabels));
    const service = manifest('Service');
    assert.ok(selects(service.spec.selector));
    for (const port of service.spec.ports) assert.ok(ports.has(port.targetPort), `the Service's ${port.name} reaches a container port`);
    assert.ok(selects(manifest('PodDisruptionBudget').spec.selector.matchLabels));
    const hpa = manifest('HorizontalPodAutoscaler');
    assert.deepEqual([hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name], ['Deployment', deployment.metadata.name]);
    assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas >= hpa.spec.minReplicas);
    const kustomization = parse(read('k8s/kustomization.yaml'));
    for (const file of readdirSync(join(DEPLOY_DIR, 'k8s')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')) assert.ok(kustomization.resources.includes(file), `kustomization lists ${file}`);
  });

  it('answers 200 on every probe path the recipes use', async () => {
    const deployment = manifest('Deployment').spec.template.spec.containers[0];
    const paths = new Set<string>(['readinessProbe', 'livenessProbe', 'startupProbe'].map((p) => deployment[p].httpGet.path));
    paths.add(/127\.0\.0\.1:3000(\/\w+)/.exec(read('Dockerfile'))![1]!);
    const server = await startServer();
    try {
      for (const path of paths) assert.equal((await fetch(`${server.origin}${path}`)).status, 200, path);
    } finally {
      await server.stop();
    }
  });
});
