/**
 * IPsecMesh: a list of sites. The same manifest is applied in every cluster; each cluster's operator knows its own
 * site name and creates an owned IPsecTunnel to every other site.
 */
import { z } from 'zod';
import { Address, Conditions, doc, Identity, Labels, Subnets } from './common.js';
import { TunnelSettings } from './tunnel.js';

export const Site = doc(
  z.object({
    name: doc(
      z
        .string()
        .min(1)
        .max(40)
        .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS label'),
      'Site name (DNS label); the operator of a cluster is started with its own site name.',
      { pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
    ),
    gateway: doc(
      z.object({
        address: doc(Address, "Public address other sites use to reach this site's gateway."),
        nodeSelector: doc(Labels.default({}), 'In the cluster of this site: gateway candidate node labels.'),
        floating: doc(
          z.boolean().default(false),
          'In the cluster of this site: address is a floating address that the elected gateway node adds to its ' +
            'interface (and removes when it stops being the gateway), so the site keeps one address across ' +
            'gateway failovers. Needs the candidates on one L2 segment; elsewhere point a load balancer or NAT at ' +
            'the elected node instead.',
        ),
      }),
      "The site's IKE gateway.",
    ),
    subnets: Subnets('Subnets of this site.'),
    id: Identity.optional(),
  }),
  'One site of the mesh.',
);

export const IPsecMeshSpec = doc(
  z
    .object({
      sites: doc(z.array(Site).min(2).max(256), 'All sites; every pair of sites gets a tunnel.', {
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      }),
      ...TunnelSettings,
    })
    .refine((m) => new Set(m.sites.map((s) => s.name)).size === m.sites.length, {
      message: 'site names must be unique',
      path: ['sites'],
    }),
  'Desired mesh: sites and the tunnel settings shared by every tunnel.',
);
export type IPsecMeshSpec = z.infer<typeof IPsecMeshSpec>;

export const IPsecMeshStatus = doc(
  z.object({
    observedGeneration: doc(z.int().min(0).optional(), 'metadata.generation the operator last acted on.'),
    conditions: Conditions,
    localSite: doc(z.string().max(63).optional(), 'Site name of this cluster as the operator knows it.'),
    tunnels: doc(z.int().min(0).optional(), 'Number of IPsecTunnels owned by this mesh in this cluster.'),
    readyTunnels: doc(z.int().min(0).optional(), 'Number of those tunnels that are Ready.'),
  }),
  'Observed state of the mesh.',
);
export type IPsecMeshStatus = z.infer<typeof IPsecMeshStatus>;
