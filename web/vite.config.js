// Vite build of the dashboard (index.html), the compare view (compare.html) and the review
// tool (review.html) into web/dist,
// which the gateway serves at `/` (ALTDATA_WEB_DIR).
//
// The US map's state outlines are computed here, at build time, from us-atlas (already
// projected to Albers USA, 975x610) with d3-geo and topojson-client, and shipped as a lazily
// loaded module of SVG path strings: the browser needs neither library nor the TopoJSON.
import { defineConfig } from 'vite';
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { geoPath } from 'd3-geo';
import { feature, mesh } from 'topojson-client';

const require = createRequire(import.meta.url);
const VIRTUAL = 'virtual:us-states';

// FIPS state code -> postal code.
const FIPS = {
  '01': 'AL', '02': 'AK', '04': 'AZ', '05': 'AR', '06': 'CA', '08': 'CO', '09': 'CT', '10': 'DE',
  '11': 'DC', '12': 'FL', '13': 'GA', '15': 'HI', '16': 'ID', '17': 'IL', '18': 'IN', '19': 'IA',
  '20': 'KS', '21': 'KY', '22': 'LA', '23': 'ME', '24': 'MD', '25': 'MA', '26': 'MI', '27': 'MN',
  '28': 'MS', '29': 'MO', '30': 'MT', '31': 'NE', '32': 'NV', '33': 'NH', '34': 'NJ', '35': 'NM',
  '36': 'NY', '37': 'NC', '38': 'ND', '39': 'OH', '40': 'OK', '41': 'OR', '42': 'PA', '44': 'RI',
  '45': 'SC', '46': 'SD', '47': 'TN', '48': 'TX', '49': 'UT', '50': 'VT', '51': 'VA', '53': 'WA',
  '54': 'WV', '55': 'WI', '56': 'WY', '72': 'PR',
};

/** Rewrites d3's absolute `M x,y L x,y … Z` path into relative moves (about half the bytes). */
function relative(d) {
  let out = '';
  let x = 0;
  let y = 0;
  let last = '';
  let startX = 0;
  let startY = 0;
  for (const [, command, args] of d.matchAll(/([MLZ])([^MLZ]*)/g)) {
    if (command === 'Z') {
      out += 'z';
      last = 'z';
      x = startX; // after z the current point is the subpath's start
      y = startY;
      continue;
    }
    const [ax, ay] = args.split(',').map(Number);
    const dx = ax - x;
    const dy = ay - y;
    x = ax;
    y = ay;
    if (command === 'M') {
      startX = ax;
      startY = ay;
    }
    if (command === 'L' && dx === 0 && dy === 0) continue;
    const letter = command === 'M' ? 'm' : 'l';
    const pair = `${dx}${dy < 0 ? '' : ','}${dy}`;
    if (letter === last) out += (dx < 0 ? '' : ' ') + pair;
    else out += letter + pair;
    last = letter;
  }
  return out;
}

function usStates() {
  return {
    name: 'us-states',
    resolveId(id) {
      return id === VIRTUAL ? '\0' + VIRTUAL : null;
    },
    load(id) {
      if (id !== '\0' + VIRTUAL) return null;
      const file = require.resolve('us-atlas/states-albers-10m.json');
      const topology = JSON.parse(readFileSync(file, 'utf8'));
      const path = geoPath().digits(0); // null projection: the coordinates are already planar (975x610 px)
      const states = feature(topology, topology.objects.states).features
        .filter((f) => FIPS[f.id])
        .map((f) => {
          const [[x0, y0], [x1, y1]] = path.bounds(f);
          const [cx, cy] = path.centroid(f);
          return {
            code: FIPS[f.id],
            name: f.properties.name,
            d: relative(path(f)),
            cx: Math.round(cx),
            cy: Math.round(cy),
            area: Math.round((x1 - x0) * (y1 - y0)),
          };
        })
        .sort((a, b) => a.name.localeCompare(b.name));
      const borders = relative(path(mesh(topology, topology.objects.states, (a, b) => a !== b)));
      return `export const WIDTH = 975;\nexport const HEIGHT = 610;\n` +
        `export const STATES = ${JSON.stringify(states)};\n` +
        `export const BORDERS = ${JSON.stringify(borders)};\n`;
    },
  };
}

export default defineConfig({
  base: '/',
  plugins: [usStates()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: true,
    rollupOptions: {
      input: {
        dashboard: resolve(import.meta.dirname, 'index.html'),
        review: resolve(import.meta.dirname, 'review.html'),
        compare: resolve(import.meta.dirname, 'compare.html'),
        analyst: resolve(import.meta.dirname, 'analyst.html'),
      },
    },
  },
  server: {
    proxy: {
      '/v1': process.env.ALTDATA_GATEWAY || 'http://127.0.0.1:8080',
      '/openapi.json': process.env.ALTDATA_GATEWAY || 'http://127.0.0.1:8080',
    },
  },
});
