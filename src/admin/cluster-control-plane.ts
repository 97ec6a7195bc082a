/**
 * Cluster mode: the admin API changes the cluster's one control plane, not this node's alone
 * (src/cluster/control-sync.ts; docs/cluster.md "Control plane").
 *
 * - A request to a control-plane route (accounts, namespaces, brokers, credentials and
 *   revocations, tokens, hooks: everything under /accounts but a broker's clients, retained
 *   messages and traces, which are node-local) is answered only once its changes are written to
 *   the cluster's bucket, and handled only once this node has applied what the bucket held when
 *   it came (`caughtUp`, 1 s bound): any node's API then gives the same answer. So is every
 *   request with a token, before the token is judged (one made or revoked on another node).
 * - A change that lost to a change of the same record made on another node at the same moment
 *   is answered 409 CONTROL_PLANE_CONFLICT; the node now holds the winner's record.
 * - While the node does not hold the control plane (its link to NATS is down, or it is still
 *   syncing) a change is refused, 503 CONTROL_PLANE_UNAVAILABLE; reads answer from its cache.
 *   So is a change the bucket did not take within ~7 s of retries (JetStream electing a leader
 *   after a NATS server died): it is undone on this node (control-sync.ts), so a retry is safe.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Cluster } from '../cluster/index.ts';
import { ApiError } from '../errors.ts';
import { failure } from './envelope.ts';

const CONTROL_ROUTE = /^\/client\/v4\/accounts(?!.*\/brokers\/:broker\/(?:clients|retained|trace)(?:\/|$))/;

const isControlRoute = (req: FastifyRequest): boolean => CONTROL_ROUTE.test(req.routeOptions.url ?? '');
const isWrite = (req: FastifyRequest): boolean => req.method !== 'GET' && req.method !== 'HEAD';

/**
 * Registers the hooks: before the access check's (a token made or revoked through another node
 * just before is judged as that node would), and before the audit's (which records the final status).
 */
export function clusterControlPlane(app: FastifyInstance, cluster: Cluster): void {
  app.addHook('onRequest', async (req) => {
    // What another node's API answered before this request came is here first (control-sync.ts).
    if (req.headers.authorization !== undefined || isControlRoute(req)) await cluster.controlPlane.caughtUp();
  });
  app.addHook('preHandler', async (req) => {
    if (isWrite(req) && isControlRoute(req) && !cluster.ready)
      throw new ApiError(
        'CONTROL_PLANE_UNAVAILABLE',
        "this node is not in step with the cluster's control plane (its link to NATS is down or syncing); retry, or use another node",
        1,
      );
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (!isControlRoute(req)) return payload;
    let lost: number;
    try {
      lost = await cluster.controlPlane.commit(isWrite(req));
    } catch (err) {
      // By name: a value import of the cluster would load the NATS client on every server.
      if ((err as Error).name !== 'ControlPlaneUnavailable' || !isWrite(req) || reply.statusCode >= 300)
        throw err;
      reply.code(503);
      return JSON.stringify(
        failure(
          new ApiError(
            'CONTROL_PLANE_UNAVAILABLE',
            "the cluster's control plane did not take this change (NATS JetStream unavailable) and it was not made; retry",
          ),
        ),
      );
    }
    if (lost === 0 || !isWrite(req) || reply.statusCode >= 300) return payload;
    reply.code(409);
    return JSON.stringify(failure(new ApiError('CONTROL_PLANE_CONFLICT')));
  });
}
