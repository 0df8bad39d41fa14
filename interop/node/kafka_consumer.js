// The seed's KafkaJS consumer: a member of a consumer group that reads the
// topic from the beginning and prints each message. Addresses and names
// from the environment: KAFKA_BROKERS (comma separated), TOPIC, GROUP.
const { Kafka } = require('kafkajs');

const kafka = new Kafka({
  clientId: 'my-app',
  brokers: (process.env.KAFKA_BROKERS || 'localhost:9092').split(',')
});

const consumer = kafka.consumer({ groupId: process.env.GROUP || 'test-group' });
const topic = process.env.TOPIC || 'test-topic';

const run = async () => {
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });

  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      console.log({
        partition,
        offset: message.offset,
        value: message.value.toString(),
      });
    },
  });
};

run().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
