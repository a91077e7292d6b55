// Walks a collection of callrecords with @microsoft/microsoft-graph-client 3.x and its PageIterator,
// as a JavaScript dashboard would, and prints what it saw as one JSON line:
//   {"ids": [...], "urls": [...every URL fetched...], "tokens": n}
// The client attaches tokens only to https:// URLs of Graph or of `customHosts`, and follows an
// @odata.nextLink only when it is https://, so this walks every page only over TLS.
//
// Env: CALLRECORDS_ROOT   https://HOST:PORT (the server; trust its CA with NODE_EXTRA_CA_CERTS)
//      CALLRECORDS_TOKEN  a bearer token with CallRecords.Read.All
//      CALLRECORDS_PATH   the collection to walk (default /communications/callRecords)
import graph from "@microsoft/microsoft-graph-client";

const { Client, PageIterator } = graph;

const root = process.env.CALLRECORDS_ROOT;
const token = process.env.CALLRECORDS_TOKEN;
const path = process.env.CALLRECORDS_PATH ?? "/communications/callRecords";
if (!root || !token) {
  console.error("set CALLRECORDS_ROOT and CALLRECORDS_TOKEN");
  process.exit(2);
}

const urls = [];
let tokens = 0;
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = typeof input === "string" ? input : input.url;
  urls.push(url);
  const headers = new Headers(init?.headers ?? (typeof input === "string" ? undefined : input.headers));
  if ((headers.get("authorization") ?? "").startsWith("Bearer ")) tokens += 1;
  return realFetch(input, init);
};

const client = Client.init({
  baseUrl: root,
  defaultVersion: "v1.0",
  customHosts: new Set([new URL(root).hostname]),
  authProvider: (done) => done(null, token),
});

const ids = [];
try {
  const first = await client.api(path).get();
  const iterator = new PageIterator(client, first, (record) => {
    ids.push(record.id);
    return true;
  });
  await iterator.iterate();
} catch (error) {
  console.error(`graph client failed: ${error?.statusCode ?? ""} ${error?.code ?? ""} ${error?.message ?? error}`);
  console.log(JSON.stringify({ ids, urls, tokens, error: String(error?.message ?? error) }));
  process.exit(1);
}
console.log(JSON.stringify({ ids, urls, tokens }));
