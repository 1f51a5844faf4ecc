// deploy/kubernetes renders with kubectl's kustomize (no cluster needed) into what a
// cluster needs: the objects, privileged nodes with the session key mounted from the
// Secret, probes on /healthz and /readyz, Prometheus annotations, and an HAProxy
// configuration that is the template rendered for the StatefulSet's pods.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseDurationMs } from '../../src/http/config.js';
import { repoRoot } from '../root/helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = any;

function kubectlSkip(): string | false {
  if (existsSync('/usr/bin/kubectl')) return false;
  if (process.env.CI === 'true') throw new Error('kubectl must be installed in CI (scripts/system-deps.sh --test)');
  return 'needs kubectl (apt-get install kubernetes-client)';
}

function render(): Obj[] {
  const result = spawnSync('kubectl', ['kustomize', join(repoRoot, 'deploy/kubernetes')], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return parseAllDocuments(result.stdout).map((doc) => doc.toJS() as Obj);
}

describe('deploy/kubernetes', { skip: kubectlSkip() }, () => {
  it('renders the namespace, the nodes, their headless Service, HAProxy, its configuration and the budgets', () => {
    const kinds = render()
      .map((o) => `${o.kind}/${o.metadata.name}`)
      .sort();
    assert.deepEqual(kinds, [
      'ConfigMap/' + kinds.find((k) => k.startsWith('ConfigMap/haproxy-config'))!.split('/')[1],
      'Deployment/haproxy',
      'Namespace/mdocker',
      'PodDisruptionBudget/haproxy',
      'PodDisruptionBudget/mdocker',
      'Service/mdocker',
      'Service/playground',
      'StatefulSet/mdocker',
    ]);
    for (const o of render()) if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'mdocker', o.kind);
  });

  it('runs privileged nodes named by their pod, the session key from the Secret, probes and scrape annotations', () => {
    const objects = render();
    const set = objects.find((o) => o.kind === 'StatefulSet');
    const pod = set.spec.template.spec;
    const [container] = pod.containers;
    assert.equal(container.securityContext.privileged, true);
    const env = new Map<string, Obj>(container.env.map((e: Obj) => [e.name, e]));
    assert.equal(env.get('MDOCKER_NODE_ID').valueFrom.fieldRef.fieldPath, 'metadata.name');
    assert.equal(env.get('MDOCKER_TOKEN').valueFrom.secretKeyRef.name, 'mdocker-secrets');
    const keyFile = env.get('MDOCKER_SESSION_KEY_FILE').value as string;
    const mount = container.volumeMounts.find((m: Obj) => keyFile.startsWith(`${m.mountPath}/`));
    assert.ok(mount, 'the key file is in a mounted volume');
    assert.equal(mount.readOnly, true);
    const volume = pod.volumes.find((v: Obj) => v.name === mount.name);
    assert.equal(volume.secret.secretName, 'mdocker-secrets');
    assert.equal(volume.secret.defaultMode, 0o400, 'only its owner reads the key');
    assert.ok(!objects.some((o) => o.kind === 'Secret'), 'no key in the manifests: the operator makes it');

    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    assert.equal(container.startupProbe.httpGet.path, '/healthz');
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    const annotations = set.spec.template.metadata.annotations;
    assert.equal(annotations['prometheus.io/scrape'], 'true');
    assert.equal(annotations['prometheus.io/path'], '/metrics');
    assert.equal(annotations['prometheus.io/port'], '8080');
    assert.ok(container.resources.requests.cpu && container.resources.requests.memory);

    const graceMs =
      parseDurationMs(env.get('MDOCKER_DRAIN_GRACE').value, 'drain') +
      parseDurationMs(env.get('MDOCKER_SHUTDOWN_TIMEOUT').value, 'shutdown');
    assert.ok(pod.terminationGracePeriodSeconds * 1000 > graceMs, 'SIGKILL comes after the drain and the removal');

    const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === set.spec.serviceName);
    assert.equal(service.spec.clusterIP, 'None');
    assert.equal(service.spec.publishNotReadyAddresses, true, 'a full or draining node still serves its users');
    const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === 'mdocker');
    assert.deepEqual(pdb.spec.selector.matchLabels, set.spec.selector.matchLabels);
  });

  it('configures HAProxy with the template rendered for the StatefulSet’s pods', async () => {
    const objects = render();
    const set = objects.find((o) => o.kind === 'StatefulSet');
    const config = objects.find((o) => o.kind === 'ConfigMap').data['haproxy.cfg'] as string;
    const renderer = (await import(pathToFileURL(join(repoRoot, 'deploy/haproxy/render.mjs')).href)) as Obj;
    const expected = renderer.render({
      bind: ':8080',
      statsSocket: '/tmp/haproxy-admin.sock',
      nodes: renderer.kubernetesNodes(set.spec.replicas, set.metadata.namespace),
    });
    assert.equal(
      config,
      expected,
      'run: node deploy/haproxy/render.mjs --kubernetes N > deploy/kubernetes/haproxy.cfg',
    );
    assert.equal(config.match(/^ {4}server mdocker-\d+ /gm)?.length, set.spec.replicas);
    const deployment = objects.find((o) => o.kind === 'Deployment');
    const configMapName = deployment.spec.template.spec.volumes[0].configMap.name;
    assert.equal(configMapName, objects.find((o) => o.kind === 'ConfigMap').metadata.name);
  });
});
