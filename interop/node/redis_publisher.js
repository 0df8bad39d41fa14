// The seed's Redis publisher: PUBLISH one message and print how many
// subscribers received it. The seed was written for the callback API of
// node-redis 3; node-redis 4 and later connect explicitly and return
// promises, so this is the same program in that API. Addresses and names
// from the environment: REDIS_URL, CHANNEL; the message is the command
// line.
const redis = require('redis');

const publisher = redis.createClient({ url: process.env.REDIS_URL || 'redis://localhost:6379' });
const channel = process.env.CHANNEL || 'notifications';
const message = process.argv.slice(2).join(' ') || 'Hello, Redis!';

const run = async () => {
  await publisher.connect();
  const reply = await publisher.publish(channel, message);
  console.log(`Message sent to ${reply} subscribers.`);
  await publisher.quit();
};

run().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
