// Publishes a folder with the SDK, or ships it as a new release when the app exists, and waits
// until it runs: node examples/sdk-deploy.mjs <folder> <name> (BERTH_URL, BERTH_TOKEN set).
import { BerthApiError, BerthClient } from 'berth';
import { shipFolder } from 'berth/bundle-packer';

const [folder = 'examples/hello', name = 'hello'] = process.argv.slice(2);
const client = new BerthClient({ url: process.env.BERTH_URL, token: process.env.BERTH_TOKEN });
const { digest } = await shipFolder(client, folder);
const app = await client.publishApp({ name, path: `/${name}`, instances: 2, bundle: digest }).catch((err) => {
  if (err instanceof BerthApiError && err.code === 'app_exists') return client.updateApp(name, { bundle: digest });
  throw err;
});
for (let details = app; ; details = await client.getApp(name)) {
  if (details.current?.status === 'active' && details.running >= details.instances) break;
  if (details.current?.status === 'failed') throw new Error(`${name} v${details.release} failed: see berth logs ${name}`);
  await new Promise((resolve) => setTimeout(resolve, 200));
}
console.log(`${name} runs on ${app.url ?? app.path}`);
