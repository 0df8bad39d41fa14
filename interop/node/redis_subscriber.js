// The seed's Redis subscriber: SUBSCRIBE to a channel and print every
// message, in the promise API of node-redis 4 and later (a subscribing
// client is a connection of its own there, as it is in Redis). Addresses
// and names from the environment: REDIS_URL, CHANNEL.
const redis = require('redis');

const subscriber = redis.createClient({ url: process.env.REDIS_URL || 'redis://localhost:6379' });
const channel = process.env.CHANNEL || 'notifications';

const run = async () => {
  await subscriber.connect();
  await subscriber.subscribe(channel, (message, channel) => {
    console.log(`Received message from ${channel}: ${message}`);
  });
};

run().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
