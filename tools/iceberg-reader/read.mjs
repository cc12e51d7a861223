#!/usr/bin/env node
// Reads an Iceberg table with icebird (a JavaScript Iceberg implementation, independent of
// pyiceberg), starting from nothing but the table's metadata JSON location, and prints JSON.
//
// Usage: node tools/iceberg-reader/read.mjs METADATA_LOCATION...
//   METADATA_LOCATION: file:///lake/warehouse/ddb/t/metadata/00003-….metadata.json (or a plain path)
//
// icebird parses the metadata JSON, the manifest list and manifests (its own Avro decoder) and
// the data and delete files (hyparquet). The only thing added here is the I/O layer: icebird
// fetches with the global fetch(), which Node cannot point at file:// URLs, so file:// URLs are
// served from the local disk; any other URL is refused (the reader never touches the network).
//
// Output: one JSON line per location, in order:
//   {"metadata_location", "format_version", "schema", "data_files", "delete_files", "rows"}
// Values that JSON cannot carry are tagged: {"$bigint": "12"}, {"$ts_ms": 1764316800000} (icebird
// gives timestamps as Date, to the millisecond), {"$bytes": "<base64>"}.
import { readFile } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { icebergManifests, icebergMetadata, icebergRead } from 'icebird'

globalThis.fetch = async input => {
  const url = typeof input === 'string' ? input : input.url
  if (!url.startsWith('file:')) {
    throw new Error(`iceberg-reader: refusing non-local URL ${url}`)
  }
  let body
  try {
    body = await readFile(fileURLToPath(url))
  } catch (err) {
    if (err.code === 'ENOENT') return new Response(null, { status: 404, statusText: 'Not Found' })
    throw err
  }
  // Whole file, status 200: hyparquet slices it itself when a range was asked for.
  return new Response(body, { status: 200 })
}

function tag(value) {
  if (typeof value === 'bigint') return { $bigint: value.toString() }
  if (value instanceof Date) return { $ts_ms: value.getTime() }
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('base64') }
  if (Array.isArray(value)) return value.map(tag)
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, tag(v)]))
  }
  return value === undefined ? null : value
}

async function readTable(location) {
  const url = location.startsWith('file:') ? location : pathToFileURL(location).href
  const slash = url.lastIndexOf('/')
  const metadataDir = url.slice(0, slash)
  const metadataFileName = url.slice(slash + 1)
  if (!metadataDir.endsWith('/metadata')) {
    throw new Error(`expected a metadata JSON under <table>/metadata/, got ${url}`)
  }
  const tableUrl = metadataDir.slice(0, -'/metadata'.length)

  const metadata = await icebergMetadata({ tableUrl, metadataFileName })
  const schema = metadata.schemas.find(s => s['schema-id'] === metadata['current-schema-id'])
  const out = {
    metadata_location: location,
    format_version: metadata['format-version'],
    schema: schema.fields.map(f => ({ id: f.id, name: f.name, type: f.type })),
    data_files: 0,
    delete_files: 0,
    rows: [],
  }
  const snapshotId = metadata['current-snapshot-id']
  if (snapshotId !== undefined && snapshotId !== null && snapshotId >= 0) {
    const manifests = await icebergManifests(metadata)
    for (const { entries } of manifests) {
      for (const entry of entries) {
        if (entry.status === 2) continue // DELETED entries are not part of the snapshot
        if (entry.data_file.content) out.delete_files++
        else out.data_files++
      }
    }
    // icebergRead refuses a snapshot without data files; such a table has no rows.
    if (out.data_files > 0) {
      out.rows = await icebergRead({ tableUrl, metadata })
    }
  }
  return out
}

async function main() {
  const locations = process.argv.slice(2)
  if (locations.length === 0) {
    console.error('usage: read.mjs METADATA_LOCATION...')
    process.exit(2)
  }
  for (const location of locations) {
    process.stdout.write(JSON.stringify(tag(await readTable(location))) + '\n')
  }
}

main().catch(err => {
  console.error(`iceberg-reader: ${err.stack || err}`)
  process.exit(1)
})
