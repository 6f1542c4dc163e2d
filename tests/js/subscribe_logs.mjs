// Interop check: the reference graphql-ws client subscribes to jobLogs and prints each line as JSON.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, jobId, apiKey] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${apiKey}` },
  retryAttempts: 0,
});

const query = `subscription($id: ID!) { jobLogs(jobId: $id, afterSeq: 0, tail: 1000) { seq stream line } }`;
try {
  for await (const result of client.iterate({ query, variables: { id: jobId } })) {
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    console.log(JSON.stringify(result.data.jobLogs));
  }
} finally {
  await client.dispose();
}
