#include "thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace recforge {
namespace {

class ThreadPool {
 public:
  // Runs task(i) for i in [0, num_tasks) on the workers and the calling thread.
  // Returns false (having run nothing) when the pool is busy with another call.
  bool try_run(int num_tasks, int num_threads, const std::function<void(int)>& task) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    grow(num_threads - 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &task;
      num_tasks_ = num_tasks;
      allowed_workers_ = num_threads - 1;
      next_.store(0);
      remaining_.store(num_tasks);
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    work(task, num_tasks);
    std::exception_ptr error;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return remaining_.load() == 0 && active_ == 0; });
      job_ = nullptr;
      error = error_;
    }
    if (error) std::rethrow_exception(error);
    return true;
  }

 private:
  void grow(int workers) {
    while (static_cast<int>(threads_.size()) < workers) {
      const int id = static_cast<int>(threads_.size());
      threads_.emplace_back([this, id] { worker_loop(id); });
      threads_.back().detach();
    }
  }

  void work(const std::function<void(int)>& task, int num_tasks) {
    for (int i = next_.fetch_add(1); i < num_tasks; i = next_.fetch_add(1)) {
      try {
        task(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      remaining_.fetch_sub(1);
    }
  }

  void worker_loop(int id) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (job_ == nullptr || id >= allowed_workers_) continue;
      const std::function<void(int)>* job = job_;
      const int num_tasks = num_tasks_;
      ++active_;
      lock.unlock();
      work(*job, num_tasks);
      lock.lock();
      --active_;
      if (remaining_.load() == 0 && active_ == 0) done_.notify_all();
    }
  }

  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> threads_;
  const std::function<void(int)>* job_ = nullptr;
  int num_tasks_ = 0;
  int allowed_workers_ = 0;
  int active_ = 0;
  uint64_t generation_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> remaining_{0};
  std::exception_ptr error_;
};

// Leaked on purpose: detached workers may still wait on it at interpreter exit.
ThreadPool* g_pool = nullptr;
std::once_flag g_atfork_once;

void forget_pool_in_child() { g_pool = nullptr; }

ThreadPool& pool() {
  std::call_once(g_atfork_once, [] { pthread_atfork(nullptr, nullptr, forget_pool_in_child); });
  static std::mutex create_mutex;
  std::lock_guard<std::mutex> lock(create_mutex);
  if (g_pool == nullptr) g_pool = new ThreadPool();
  return *g_pool;
}

}  // namespace

void parallel_for(int64_t n, int64_t grain, int num_threads,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = (n + grain - 1) / grain;
  if (num_threads <= 1 || max_chunks <= 1) {
    fn(0, n);
    return;
  }
  // A few chunks per thread so that uneven chunks balance out.
  const int chunks = static_cast<int>(std::min<int64_t>(max_chunks, 4LL * num_threads));
  const std::function<void(int)> task = [&](int c) {
    fn(n * c / chunks, n * (c + 1) / chunks);
  };
  if (!pool().try_run(chunks, num_threads, task)) fn(0, n);
}

}  // namespace recforge
