// The seed's KafkaJS producer: connect, send one message, disconnect.
// Addresses and names from the environment: KAFKA_BROKERS (comma
// separated), TOPIC; the message is the command line.
const { Kafka } = require('kafkajs');

const kafka = new Kafka({
  clientId: 'my-app',
  brokers: (process.env.KAFKA_BROKERS || 'localhost:9092').split(',')
});

const producer = kafka.producer();
const topic = process.env.TOPIC || 'test-topic';
const value = process.argv.slice(2).join(' ') || 'Hello KafkaJS user!';

const run = async () => {
  await producer.connect();
  await producer.send({
    topic,
    messages: [
      { value }
    ],
  });
  await producer.disconnect();
};

// The seed only logs the error; the exit status says so too, so that a
// caller can tell.
run().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
