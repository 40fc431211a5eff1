#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "engine/test_util/fake_backend.h"

namespace brainstem {
namespace {

struct Outcome {
  Status status;
  std::vector<float> outputs;
  int64_t batch_requests = 0;
};

std::unique_ptr<InferRequest> MakeRequest(std::vector<float> rows, int64_t batch,
                                          std::promise<Outcome>* promise) {
  auto request = std::make_unique<InferRequest>();
  request->inputs = std::move(rows);
  request->batch = batch;
  request->done = [promise](InferResult&& r) {
    promise->set_value({r.status, std::vector<float>(r.outputs.begin(), r.outputs.end()),
                        r.timings.batch_requests});
  };
  return request;
}

std::unique_ptr<Scheduler> MakeScheduler(SchedulerOptions options, FakeBackend** backend,
                                         ServerMetrics* metrics) {
  auto fake = std::make_unique<FakeBackend>(2, 3);
  *backend = fake.get();
  std::vector<std::unique_ptr<Backend>> instances;
  instances.push_back(std::move(fake));
  auto scheduler = Scheduler::Create(std::move(options), std::move(instances), metrics);
  EXPECT_TRUE(scheduler.ok()) << scheduler.status().ToString();
  return std::move(scheduler).value();
}

TEST(SchedulerTest, LoneRequestRunsInlineWithCorrectRows) {
  ServerMetrics metrics;
  FakeBackend* fake = nullptr;
  auto scheduler = MakeScheduler({}, &fake, &metrics);
  std::promise<Outcome> p;
  ASSERT_TRUE(scheduler->Submit(MakeRequest({1, 2, 3, 4}, 2, &p)).ok());
  Outcome o = p.get_future().get();
  ASSERT_TRUE(o.status.ok());
  EXPECT_EQ(o.outputs, (std::vector<float>{3, 6, 9, 7, 14, 21}));
  EXPECT_EQ(metrics.inline_batches_total.load(), 1u);
}

TEST(SchedulerTest, RejectsWrongInputSize) {
  ServerMetrics metrics;
  FakeBackend* fake = nullptr;
  auto scheduler = MakeScheduler({}, &fake, &metrics);
  std::promise<Outcome> p;
  Status s = scheduler->Submit(MakeRequest({1, 2, 3}, 2, &p));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  s = scheduler->Submit(MakeRequest({}, 0, &p));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST(SchedulerTest, SubmitManyMergesIntoFewCallsWithinMaxBatchAndRefusesBadOnes) {
  ServerMetrics metrics;
  FakeBackend* fake = nullptr;
  SchedulerOptions options;
  options.max_batch_size = 4;
  auto scheduler = MakeScheduler(options, &fake, &metrics);
  std::promise<Outcome> p[5];
  std::vector<std::unique_ptr<InferRequest>> requests;
  requests.push_back(MakeRequest({1, 2}, 1, &p[0]));
  requests.push_back(MakeRequest({3, 4, 5, 6}, 2, &p[1]));
  requests.push_back(MakeRequest({1, 2, 3}, 2, &p[2]));  // wrong size: refused, not run
  requests.push_back(MakeRequest({7, 8}, 1, &p[3]));
  requests.push_back(MakeRequest({1, 1}, 1, &p[4]));  // 5th row: past max_batch_size 4
  std::vector<Status> statuses = scheduler->SubmitMany(std::move(requests));
  ASSERT_EQ(statuses.size(), 5u);
  EXPECT_TRUE(statuses[0].ok() && statuses[1].ok() && statuses[3].ok() && statuses[4].ok());
  EXPECT_EQ(statuses[2].code(), StatusCode::kInvalidArgument);
  // Idle and nothing queued: run here, 4 rows in one call, the last row in a second.
  EXPECT_EQ(fake->calls.load(), 2);
  EXPECT_EQ(metrics.inline_batches_total.load(), 2u);
  Outcome o0 = p[0].get_future().get();
  Outcome o1 = p[1].get_future().get();
  Outcome o3 = p[3].get_future().get();
  Outcome o4 = p[4].get_future().get();
  // Each request gets its own rows, as if it had run alone.
  EXPECT_EQ(o0.outputs, (std::vector<float>{3, 6, 9}));
  EXPECT_EQ(o1.outputs, (std::vector<float>{7, 14, 21, 11, 22, 33}));
  EXPECT_EQ(o3.outputs, (std::vector<float>{15, 30, 45}));
  EXPECT_EQ(o4.outputs, (std::vector<float>{2, 4, 6}));
  EXPECT_EQ(o0.batch_requests, 3);
  EXPECT_EQ(o4.batch_requests, 1);
}

TEST(SchedulerTest, SubmitManyQueuesWhenTheInstanceIsBusy) {
  ServerMetrics metrics;
  FakeBackend* fake = nullptr;
  auto scheduler = MakeScheduler({}, &fake, &metrics);
  fake->hold->store(true);
  std::promise<Outcome> first;
  std::thread busy([&] { ASSERT_TRUE(scheduler->Submit(MakeRequest({1, 2}, 1, &first)).ok()); });
  // The lone request runs inline and waits at the gate, holding the only instance.
  while (fake->started.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::promise<Outcome> p[2];
  std::vector<std::unique_ptr<InferRequest>> requests;
  requests.push_back(MakeRequest({1, 2}, 1, &p[0]));
  requests.push_back(MakeRequest({3, 4}, 1, &p[1]));
  std::vector<Status> statuses = scheduler->SubmitMany(std::move(requests));
  EXPECT_TRUE(statuses[0].ok() && statuses[1].ok());
  fake->hold->store(false);
  busy.join();
  EXPECT_TRUE(first.get_future().get().status.ok());
  EXPECT_EQ(p[0].get_future().get().outputs, (std::vector<float>{3, 6, 9}));
  EXPECT_EQ(p[1].get_future().get().outputs, (std::vector<float>{7, 14, 21}));
  EXPECT_EQ(metrics.inline_batches_total.load(), 1u);  // the two queued ones ran on the worker
}

TEST(SchedulerTest, ConcurrentRequestsAreMergedAndMatchUnbatchedResults) {
  ServerMetrics metrics;
  FakeBackend* fake = nullptr;
  SchedulerOptions options;
  options.inline_when_idle = false;
  options.max_batch_size = 16;
  auto scheduler = MakeScheduler(options, &fake, &metrics);
  fake->delay_us = 300;  // slow enough that requests pile up behind each call

  constexpr int kThreads = 8, kPerThread = 40;
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0}, merged{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        float a = static_cast<float>(t), b = static_cast<float>(i);
        std::promise<Outcome> p;
        ASSERT_TRUE(scheduler->Submit(MakeRequest({a, b}, 1, &p)).ok());
        Outcome o = p.get_future().get();
        if (!o.status.ok() || o.outputs != std::vector<float>{a + b, 2 * (a + b), 3 * (a + b)}) {
          mismatches.fetch_add(1);
        }
        if (o.batch_requests > 1) merged.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(merged.load(), 0);
  EXPECT_LT(fake->calls.load(), kThreads * kPerThread);
  EXPECT_EQ(metrics.observations_total.load(), static_cast<uint64_t>(kThreads * kPerThread));
}

TEST(SchedulerTest, FullQueueIsRetryableUnavailable) {
  ServerMetrics metrics;
  FakeBackend* fake = nullptr;
  SchedulerOptions options;
  options.inline_when_idle = false;
  options.queue_capacity = 2;
  options.max_batch_size = 1;
  auto scheduler = MakeScheduler(options, &fake, &metrics);
  *fake->hold = true;
  std::vector<std::promise<Outcome>> promises(8);
  int accepted = 0, refused = 0;
  std::vector<std::promise<Outcome>*> accepted_promises;
  for (auto& p : promises) {
    Status s = scheduler->Submit(MakeRequest({1, 1}, 1, &p));
    if (s.ok()) {
      ++accepted;
      accepted_promises.push_back(&p);
    } else {
      EXPECT_EQ(s.code(), StatusCode::kUnavailable);
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_LE(accepted, 3);  // one running (held) plus a full queue
  EXPECT_EQ(metrics.rejected_queue_full_total.load(), static_cast<uint64_t>(refused));
  *fake->hold = false;
  // Which submissions were accepted depends on when the worker took the first one: wait only
  // for those (a refused request's completion never runs).
  for (auto* p : accepted_promises) EXPECT_TRUE(p->get_future().get().status.ok());
}

TEST(SchedulerTest, DeadlinesExpireBeforeAndWhileQueued) {
  ServerMetrics metrics;
  FakeBackend* fake = nullptr;
  SchedulerOptions options;
  options.inline_when_idle = false;
  options.max_batch_size = 1;
  auto scheduler = MakeScheduler(options, &fake, &metrics);

  std::promise<Outcome> expired_early;
  auto early = MakeRequest({1, 1}, 1, &expired_early);
  early->deadline = Clock::now() - std::chrono::milliseconds(1);
  EXPECT_EQ(scheduler->Submit(std::move(early)).code(), StatusCode::kDeadlineExceeded);

  *fake->hold = true;
  std::promise<Outcome> blocker, late;
  ASSERT_TRUE(scheduler->Submit(MakeRequest({1, 1}, 1, &blocker)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the worker is now held
  auto queued = MakeRequest({1, 1}, 1, &late);
  queued->deadline = Clock::now() + std::chrono::milliseconds(5);
  ASSERT_TRUE(scheduler->Submit(std::move(queued)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  *fake->hold = false;
  EXPECT_TRUE(blocker.get_future().get().status.ok());
  EXPECT_EQ(late.get_future().get().status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(metrics.deadline_exceeded_total.load(), 1u);
}

TEST(SchedulerTest, BackendFailureReachesEveryRequestAndWorkerSurvives) {
  ServerMetrics metrics;
  FakeBackend* fake = nullptr;
  auto scheduler = MakeScheduler({}, &fake, &metrics);
  fake->fail = true;
  std::promise<Outcome> p1;
  ASSERT_TRUE(scheduler->Submit(MakeRequest({1, 1}, 1, &p1)).ok());
  EXPECT_EQ(p1.get_future().get().status.code(), StatusCode::kInternal);
  fake->fail = false;
  std::promise<Outcome> p2;
  ASSERT_TRUE(scheduler->Submit(MakeRequest({1, 1}, 1, &p2)).ok());
  EXPECT_TRUE(p2.get_future().get().status.ok());
  EXPECT_EQ(metrics.inference_errors_total.load(), 1u);
}

TEST(SchedulerTest, ShutdownCompletesQueuedRequests) {
  ServerMetrics metrics;
  FakeBackend* fake = nullptr;
  SchedulerOptions options;
  options.inline_when_idle = false;
  options.max_batch_size = 1;
  auto scheduler = MakeScheduler(options, &fake, &metrics);
  *fake->hold = true;
  std::vector<std::promise<Outcome>> promises(4);
  for (auto& p : promises) ASSERT_TRUE(scheduler->Submit(MakeRequest({1, 1}, 1, &p)).ok());
  std::thread release([gate = fake->hold] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    *gate = false;
  });
  scheduler.reset();
  release.join();
  int unavailable = 0;
  for (auto& p : promises) {
    Status s = p.get_future().get().status;
    EXPECT_TRUE(s.ok() || s.code() == StatusCode::kUnavailable) << s.ToString();
    unavailable += s.code() == StatusCode::kUnavailable;
  }
  EXPECT_GT(unavailable, 0);
}

}  // namespace
}  // namespace brainstem
